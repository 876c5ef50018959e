// Package attsig verifies the signatures carried by the attachments of a
// document, after the envelope stage (envelope.Parse) and beside the
// envelope's own XML-DSig check (envelope/dsig): detached CMS signatures
// (an attachment X and its signature X.p7s in the same edXML package) and
// the signatures embedded in PDF attachments (PAdES / adbe.pkcs7.detached:
// a /ByteRange and a /Contents CMS in each signature dictionary) — in
// Vietnamese practice the legally binding signature usually sits in the PDF.
//
// Every signature is checked against a trust domain of envelope/trust at the
// hub's clock (never at the signingTime the signer claims): chain, key
// usage, key strength, digest allow-list, then the CMS signature, then
// revocation through the domain's checker, whose evidence is kept in the
// verdict. Each attachment gets its own Verdict with a stable code.
//
// It does no I/O itself except through the domain's revocation checker. All
// inputs are size-limited; the CMS parser is guarded against panics.
//
// # Pairing convention for detached signatures
//
// An attachment whose AttachmentName ends in ".p7s" (any case) is a
// detached CMS signature over the attachment of the same package whose
// AttachmentName is that name without the suffix ("Quyet-dinh.pdf" and
// "Quyet-dinh.pdf.p7s"). A ".p7s" attachment without such a partner, or
// with more than one, gets a verdict of its own with code
// detached_signature_orphan. The ".p7s" attachment itself gets no other
// verdict: its result is the verdict of the attachment it signs (kind
// cms-detached, with SignatureContentID naming the ".p7s").
package attsig
