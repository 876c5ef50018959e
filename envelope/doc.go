// Package envelope is the hub's document model and its codecs: it detects what
// a submitted byte string is (an edXML document package, an edXML status
// package, or a Lienthong hub envelope), reads the routing metadata out of it,
// and validates organ codes. It is the first stage on the path of a document:
// adapters hand it raw bytes, it returns a Document that keeps those bytes
// untouched in Raw and the normalised metadata beside them.
//
// It does no network or database I/O.
package envelope
