// Package trust holds the hub's trust domains: for each counterpart family
// (the national CA, a partner parliament's CA, the hub's own CA) the trust
// anchors, the signature policy, and the rules a signing certificate must
// meet. The signature verifiers in envelope/dsig (and later CMS) consult it
// after parsing and before any cryptographic check: it builds and validates
// the signer's chain with crypto/x509 at the hub's clock (never a time the
// signer claims), checks key usage and key strength, and calls the domain's
// revocation checker when one is configured.
//
// It reads PEM files when asked to (LoadDir, AddPEMFile) and does no network
// I/O itself; revocation checking is delegated to a RevocationChecker.
package trust
