"""Pipeline stages for this Kairos distro, one module each.

config    release.yaml: load, validate; ConfigError names the field
cells     the matrix's cells and the rules kairos-init would enforce on them
ref       image references, parsed as Docker parses them (ImageRef)
tagformat release.yaml's tag formats (default: Kairos's factory convention)
naming    image tags, published names, artifact names (from /etc/kairos-release)
build     kairos-init conversion via BuildKit, one image per cell
artifacts AuroraBoot ISO and checksum per cell; sbom (pkgdb: the package databases)
publish   push by digest, then tags (registry: the OCI client it uses)
release   `invoke release`: every stage per cell, incremental; the CI matrix
boot      test-boot: the console marker, SSH checks (qemu: the QEMU command plan)
sign      keyless Sigstore signing and offline verification
pins      `invoke bump`: move one pin of release.yaml at a time
promote   `invoke promote`: channel tags to verified digests
runner    the one door to side effects; alone decides what `invoke --dry` does
"""
