"""Build and publish this Kairos distro: `invoke --list` shows every task.

The tasks come from the kairos-distro package pinned in pyproject.toml; what to
build is release.yaml. Add or override a task here, e.g.:

    @task
    def hello(c):
        "Say hello: its docstring is its line in `invoke --list`."
        print("hello")

    ns.add_task(hello)

Machine settings (network, keys, boot.*) go in invoke.yaml or INVOKE_KAIROS_*
variables: `python -c "import kairos_distro.tasks as t; help(t)"` lists them.
"""

from kairos_distro.tasks import ns

__all__ = ["ns"]
