// Package dsig verifies and produces the enveloped XML-DSig signatures of the
// hub's XML documents (edXML packages, hub envelopes, Akoma Ntoso payloads).
//
// On the accept path it runs right after the envelope is opened: Verifier
// parses the received bytes with hardened settings (UTF-8 only, no DOCTYPE,
// no duplicate attributes, a depth limit), requires exactly one ds:Signature
// at the place the document type expects, enforces the algorithm allow-list,
// validates the signer's chain against a trust domain (envelope/trust) at the
// hub's clock, and only then checks signature value and digest with that one
// validated certificate (validateAt: SignedInfo canonicalised as goxmldsig
// does it, by the package's own canonicalizer, the whole document streamed
// through that canonicalizer into the digest). It returns a Report and the
// verified root element of its private tree, the signature removed: callers
// read metadata from that element only (signature-wrapping defence). It
// never re-serialises or alters the bytes it is given.
//
// VerifyBytes makes the same checks over the bytes in memory without
// building a tree (the two token passes of VerifyStream, the second a replay
// of the first): what it verified is then the bytes themselves, the
// signature element left out, and callers read metadata from those bytes
// (envelope.Parse), as VerifyStream's read them from the digested pass. It
// falls back to Verify for an embedded signed document.
//
// A hub envelope carrying an Akoma Ntoso payload signed by its author may
// carry that second signature (Options.Embedded): the envelope's signature
// is then checked by validateAt as well (for the chosen signature element,
// where goxmldsig would validate the first one in document order), and the
// payload's by validateAt too, on the payload detached as a document of
// its own; each gets its own Report.
//
// Sign produces new signed bytes (exclusive c14n, RSA-SHA256 or ECDSA-SHA256,
// Reference URI="", the chain in KeyInfo), with ECDSA values in the raw r‖s
// form XML-DSig 1.1 requires; Verifier accepts both r‖s and DER.
//
// The package does no network or database I/O; revocation is delegated to
// the trust domain's checker.
package dsig
