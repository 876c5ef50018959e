//go:build libxmlsec

// Package libxmlsec wraps libxmlsec1, the reference XML-DSig implementation,
// for one purpose: the side-by-side benchmark that verifies the same signed
// edXML bytes with libxmlsec1 and with the hub's verifier (envelope/dsig). It
// is not on the path of any document. Build with -tags libxmlsec and
// Debian's libxmlsec1-dev.
package libxmlsec

/*
#cgo pkg-config: xmlsec1-openssl
#include <stdlib.h>
#include <libxml/parser.h>
#include <xmlsec/xmlsec.h>
#include <xmlsec/xmltree.h>
#include <xmlsec/xmldsig.h>
#include <xmlsec/crypto.h>

static int lt_init(void) {
	xmlInitParser();
	if (xmlSecInit() < 0) return -1;
	if (xmlSecCheckVersion() != 1) return -2;
	if (xmlSecCryptoAppInit(NULL) < 0) return -3;
	if (xmlSecCryptoInit() < 0) return -4;
	return 0;
}

static xmlSecKeysMngrPtr lt_mngr(const unsigned char *pem, int n) {
	xmlSecKeysMngrPtr m = xmlSecKeysMngrCreate();
	if (m == NULL) return NULL;
	if (xmlSecCryptoAppDefaultKeysMngrInit(m) < 0 ||
	    xmlSecCryptoAppKeysMngrCertLoadMemory(m, pem, (xmlSecSize)n, xmlSecKeyDataFormatPem, xmlSecKeyDataTypeTrusted) < 0) {
		xmlSecKeysMngrDestroy(m);
		return NULL;
	}
	return m;
}

// lt_verify parses buf and verifies its first ds:Signature: 1 valid, 0 invalid, <0 error.
static int lt_verify(xmlSecKeysMngrPtr m, const char *buf, int n) {
	xmlDocPtr doc = xmlReadMemory(buf, n, NULL, NULL, XML_PARSE_NONET);
	if (doc == NULL) return -1;
	xmlNodePtr node = xmlSecFindNode(xmlDocGetRootElement(doc), xmlSecNodeSignature, xmlSecDSigNs);
	if (node == NULL) { xmlFreeDoc(doc); return -2; }
	xmlSecDSigCtxPtr ctx = xmlSecDSigCtxCreate(m);
	int rc = -3;
	if (ctx != NULL) {
		if (xmlSecDSigCtxVerify(ctx, node) == 0) rc = (ctx->status == xmlSecDSigStatusSucceeded) ? 1 : 0;
		else rc = 0;
		xmlSecDSigCtxDestroy(ctx);
	}
	xmlFreeDoc(doc);
	return rc;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"
)

var initOnce = sync.OnceValue(func() error {
	if rc := C.lt_init(); rc != 0 {
		return fmt.Errorf("libxmlsec1 init failed (%d)", int(rc))
	}
	return nil
})

// Verifier verifies with libxmlsec1 against one trusted root.
type Verifier struct{ m C.xmlSecKeysMngrPtr }

// New trusts the PEM certificate rootPEM.
func New(rootPEM []byte) (*Verifier, error) {
	if err := initOnce(); err != nil {
		return nil, err
	}
	p := C.CBytes(rootPEM)
	defer C.free(p)
	m := C.lt_mngr((*C.uchar)(p), C.int(len(rootPEM)))
	if m == nil {
		return nil, errors.New("libxmlsec1: cannot load the trusted certificate")
	}
	return &Verifier{m: m}, nil
}

// ErrInvalid is a signature libxmlsec1 did not accept.
var ErrInvalid = errors.New("libxmlsec1: signature invalid")

// Verify parses doc and verifies its signature.
func (v *Verifier) Verify(doc []byte) error {
	if len(doc) == 0 {
		return errors.New("empty document")
	}
	switch rc := C.lt_verify(v.m, (*C.char)(unsafe.Pointer(&doc[0])), C.int(len(doc))); {
	case rc == 1:
		return nil
	case rc == 0:
		return ErrInvalid
	default:
		return fmt.Errorf("libxmlsec1: error %d", int(rc))
	}
}

// Close frees the keys manager.
func (v *Verifier) Close() { C.xmlSecKeysMngrDestroy(v.m) }
