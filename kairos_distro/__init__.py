"""kairos-distro: the pipeline a baked repository pins; one module per concern.

tasks     the invoke collection a repository's tasks.py imports (wiring only)
invocation what every task does first: release.yaml, the runner, cells, keys, Sigstore
numbers   numeric flags and settings (test-boot, keys), typed and range-checked

config    release.yaml: load, validate; ConfigError names the field
yamlfile  the one YAML loader: limits, repeated keys, core tags, values as written
fields    one field at a time; ConfigError (words: values as written, did you mean)
cells     the matrix's cells and the rules kairos-init would enforce on them
ref       image references, parsed as Docker parses them (ImageRef)
tagformat release.yaml's tag formats (default: Kairos's factory convention)
naming    image tags, published names, artifact names (from /etc/kairos-release)
build     kairos-init conversion via BuildKit, one image per cell
artifacts AuroraBoot ISO and checksum per cell; sbom (syft), scan (grype: vulns, vulndb, policy)
publish   push by digest, then tags (registry: the OCI client it uses)
hosts     which host a credential may go to; redact, for every printed URL
release   `invoke release`: every stage per cell, incremental (behind a Stages seam)
ledger    why a cell is skipped, reused or redone; its four stores (label, stamps, records)
ci        the matrix as CI systems read it (json, github, gitlab)
summary   the release summaries (terminal, Markdown, JSON), with the ledger's reason
keys      trusted boot: the owner's Secure Boot and PCR keys (AuroraBoot genkey)
boot      test-boot: the console marker, SSH checks (qemu: the QEMU command plan)
sign      keyless Sigstore signing and offline verification (the client)
signing   what a cell signs and verifies, at publish and in `invoke sign`/`verify`
pins      `invoke bump`: move one pin of release.yaml at a time
promote   `invoke promote`: channel tags to verified digests
runner    the one door to side effects; alone decides what `invoke --dry` does
"""
