// Package xmlscan is the hub's strict XML 1.0 tokenizer. Every XML document
// the hub receives passes through it once, right after the envelope is
// opened: envelope/dsig builds its private tree from its tokens (BuildTree)
// and the streaming canonicaliser reads large bodies with it.
//
// Two modes share one Scanner:
//
//   - NewBytes reads a document held in memory. Character data is one token
//     per text run (up to the next markup) and is returned without copying
//     when it needs no decoding (no entity reference, no carriage return).
//   - NewReader reads from an io.Reader through a bounded buffer. With
//     Options.MaxTextChunk > 0 character data of any length (text and CDATA
//     sections) is delivered as successive CharData tokens of at most
//     max(MaxTextChunk, 4) bytes, so a huge base64 text never sits in memory;
//     markup (a tag, a comment, a processing instruction) must fit in
//     Options.MaxTokenBytes. Both modes accept exactly the same documents
//     and give the same tokens once adjacent CharData are joined; when a
//     text run holds more than one problem, reader mode, which sees the run
//     in chunks, may report a different one first.
//
// The scanner is strict: UTF-8 only (a declared encoding must be UTF-8), no
// DOCTYPE (ErrDoctype), only the five predefined entities and character
// references to valid XML characters, valid names (at most one colon, not
// first or last), matching end tags, unique attributes (same prefix and
// local name), exactly one root element followed only by whitespace,
// comments and processing instructions, no '<' in attribute values, no
// "]]>" in text and no "--" in comments. It does not resolve namespaces:
// tokens carry the prefix and local name as written, like encoding/xml's
// RawToken.
//
// Intentional differences from encoding/xml (RawToken, Strict), which the
// differential fuzz test masks:
//
//   - end-of-line normalisation (\r\n and a lone \r become \n) applies to
//     comments and processing instructions too, not only to text, as the
//     XML spec says for the whole entity;
//   - attribute values are normalised as the XML spec says for CDATA
//     attributes: a literal tab, newline or carriage return becomes a space
//     (after end-of-line normalisation, so \r\n becomes one space);
//     character references (&#10;) are kept as the character they name;
//   - whitespace outside the root element is skipped, not returned;
//   - the XML declaration is returned as a ProcInst with Target "xml" only
//     when it opens the document; "xml" as a PI target elsewhere is refused;
//   - a UTF-8 byte order mark at the start is skipped;
//   - an entity or character reference longer than 32 bytes is refused.
//
// Errors are *SyntaxError values carrying the byte offset; the conditions a
// caller maps to its own rejection codes wrap a sentinel (ErrDoctype,
// ErrNotUTF8, ErrTooDeep, ErrDuplicateAttr, ErrTooManyAttrs, ErrNameTooLong,
// ErrTokenTooLarge) for errors.Is.
//
// BuildTree makes an etree.Document of the tokens (envelope/dsig's private
// tree); envelope.Parse runs its state machine on them directly.
package xmlscan
