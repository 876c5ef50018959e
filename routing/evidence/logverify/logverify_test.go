package logverify

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func sampleLeaf() Leaf {
	sum := sha256.Sum256([]byte("<a/>"))
	return Leaf{EventID: 42, DocumentID: "0193f7a0-0000-7000-8000-000000000001", Kind: "accepted", State: "accepted",
		Detail: `{"size": 4}`, At: time.Date(2026, 11, 22, 8, 0, 0, 123456000, time.UTC), DocumentSHA256: sum[:]}
}

func TestLeafRoundTripAndRejects(t *testing.T) {
	b := sampleLeaf().Encode()
	got, err := DecodeLeaf(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Encode(), b) || got.EventID != 42 || got.Detail != `{"size": 4}` {
		t.Fatalf("round trip: %+v", got)
	}
	nonUTC := sampleLeaf().Encode()
	nonUTC = bytes.Replace(nonUTC, []byte("2026-11-22T08:00:00.123456Z"), []byte("2026-11-22T09:00:00.123456+01:00"), 1)
	for _, tc := range []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"version 2", append([]byte{2}, b[1:]...)},
		{"truncated", b[:len(b)-1]},
		{"trailing byte", append(append([]byte(nil), b...), 0)},
		{"short digest", append(append([]byte(nil), b[:len(b)-36]...), 0, 0, 0, 4, 1, 2, 3, 4)},
		{"time not in UTC", nonUTC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := DecodeLeaf(tc.in); !errors.Is(err, ErrMalformedLeaf) {
				t.Fatalf("DecodeLeaf: %v, want ErrMalformedLeaf", err)
			}
		})
	}
}

func TestCheckpointBodyAndSignature(t *testing.T) {
	skey, vkey, err := GenerateKey("lienthong.test/log")
	if err != nil {
		t.Fatal(err)
	}
	signer, _ := note.NewSigner(skey)
	cp := Checkpoint{Origin: "lienthong.test/log", Size: 7, Root: make([]byte, 32), Time: time.Date(2026, 11, 22, 8, 0, 0, 0, time.UTC)}
	body := cp.Body()
	if want := "lienthong.test/log\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\ntime 2026-11-22T08:00:00Z\n"; body != want {
		t.Fatalf("body %q, want %q", body, want)
	}
	signed, err := note.Sign(&note.Note{Text: body}, signer)
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyCheckpoint(string(signed), vkey)
	if err != nil || got.Size != 7 || !got.Time.Equal(cp.Time) {
		t.Fatalf("verify: %+v %v", got, err)
	}
	otherS, _, _ := GenerateKey("other.test/log")
	os, _ := note.NewSigner(otherS)
	wrongOrigin, _ := note.Sign(&note.Note{Text: strings.Replace(body, "lienthong.test/log", "other.test/log", 1)}, os)
	for _, tc := range []struct{ name, text string }{
		{"edited size", strings.Replace(string(signed), "\n7\n", "\n8\n", 1)},
		{"no signature", body},
		{"origin is not the key's name", string(wrongOrigin)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := VerifyCheckpoint(tc.text, vkey); err == nil {
				t.Fatal("verified")
			}
		})
	}
	for _, bad := range []string{"", "o\n7\n", "o\n07\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n", "o\n7\nAAAA\n", "\n7\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"} {
		if _, err := ParseCheckpoint(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseCheckpoint(%q): %v", bad, err)
		}
	}
}

// FuzzDecodeLeaf: no panic; whatever decodes re-encodes to the same bytes.
func FuzzDecodeLeaf(f *testing.F) {
	f.Add(sampleLeaf().Encode())
	l := sampleLeaf()
	l.DocumentSHA256, l.Kind, l.Recipient = nil, "routed", "000.00.00.C02"
	f.Add(l.Encode())
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLeaf(b)
		if err != nil {
			return
		}
		if again := l.Encode(); !bytes.Equal(again, b) {
			t.Fatalf("decode→encode changed the bytes:\n%x\n%x", b, again)
		}
	})
}

// FuzzVerify: the verifiers never panic and never accept a proof that is not
// the genuine one for a small tree.
func FuzzVerify(f *testing.F) {
	_, vkey, _ := GenerateKey("lienthong.test/log")
	f.Add("lienthong.test/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— lienthong.test/log AAAA\n", []byte("leaf"), uint64(0), uint64(1), []byte{})
	f.Add("", []byte{}, uint64(3), uint64(5), bytes.Repeat([]byte{7}, 96))
	// A genuine tree of 5 leaves.
	rf := &compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r := rf.NewEmptyRange(0)
	var leaves [][]byte
	for i := range 5 {
		leaf := []byte{byte(i)}
		leaves = append(leaves, leaf)
		_ = r.Append(LeafHash(leaf), nil)
	}
	root, _ := r.GetRootHash(nil)
	f.Fuzz(func(t *testing.T, text string, leaf []byte, index, size uint64, flat []byte) {
		_, _ = VerifyCheckpoint(text, vkey)
		_, _ = ParseCheckpoint(text)
		var p [][]byte
		for len(flat) >= 32 {
			p, flat = append(p, flat[:32]), flat[32:]
		}
		if len(flat) > 0 {
			p = append(p, flat)
		}
		errI := VerifyInclusion(leaf, index, size, p, root)
		_ = VerifyConsistency(index, size, p, root, root)
		if errI == nil && !bytes.Equal(leaf, leaves[min(index, 4)]) {
			t.Fatalf("inclusion of a foreign leaf verified at %d/%d", index, size)
		}
	})
}
