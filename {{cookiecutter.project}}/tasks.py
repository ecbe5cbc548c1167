"""Build and publish this Kairos distro: `invoke --list` shows every task.

The tasks come from the kairos-distro package pinned in pyproject.toml; what to
build is release.yaml. Add a task below, or replace one of the pipeline's by
adding yours under its name:

    from invoke import task

    @task
    def hello(c):
        "Say hello: a task's docstring is its line in `invoke --list`."
        print("hello")

    ns.add_task(hello)                     # invoke hello
    ns.add_task(my_build, name="build")    # your build instead of the pipeline's

Machine settings (network, keys, boot.*) go in invoke.yaml or INVOKE_KAIROS_*
variables: `python -m pydoc kairos_distro.tasks` lists them.
"""

from kairos_distro.tasks import ns

__all__ = ["ns"]
