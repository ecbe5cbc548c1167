"""Pipeline stages for this Kairos distro, one module each.

config    release.yaml: load, validate (the rules kairos-init would enforce)
naming    cell ids, image tags, artifact names (from /etc/kairos-release)
build     kairos-init conversion via BuildKit, one image per cell
artifacts AuroraBoot ISO and checksum per cell
publish   push by digest, then tags (registry: the OCI client it uses)
release   the matrix for CI, and running a stage over cells
runner    the one door to side effects; honours `invoke --dry`
"""
