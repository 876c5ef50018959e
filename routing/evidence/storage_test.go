package evidence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/testonly"

	"lienthong/routing/evidence/logverify"
)

// synthLeaf is the bytes of synthetic leaf i (the storage does not decode
// leaves; the sequencer tests cover real ones).
func synthLeaf(i uint64) []byte { return fmt.Appendf(nil, "synthetic leaf %d", i) }

// appendSynth appends n synthetic leaves to the log through storeLeaves (the
// sequencer's write path) in transactions of irregular sizes, moving the tree
// head, and to ref. Their event ids are negative, so that they never meet
// real events.
func appendSynth(t testing.TB, e *env, ref *testonly.Tree, n int, floor uint) {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	for done := 0; done < n; {
		batch := min(n-done, 1+rng.IntN(1500))
		tx, err := e.pool.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		size, root, err := treeHead(ctx, tx)
		if err != nil {
			t.Fatal(err)
		}
		r, err := loadRange(ctx, tx, size)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := rootOf(r); !bytes.Equal(got, root) {
			t.Fatalf("size %d: loaded range has root %x, head says %x", size, got, root)
		}
		ids := make([]int64, batch)
		leaves := make([][]byte, batch)
		for i := range batch {
			idx := size + uint64(i)
			ids[i], leaves[i] = -1-int64(idx), synthLeaf(idx)
			ref.AppendData(leaves[i])
		}
		rest, err := storeLeaves(ctx, tx, r, ids, leaves, time.Now(), floor, false)
		if err != nil {
			t.Fatal(err)
		}
		root, _ = rootOf(r)
		if err := rest.storeHead(ctx, tx, r.End(), root, 0); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		done += batch
	}
}

// nodeRowsFor is how many log_nodes rows a tree of size n has when every
// perfect subtree at a level of floor or more is stored.
func nodeRowsFor(n uint64, floor uint) int64 {
	var rows uint64
	for l := max(floor, 1); l < 64; l++ {
		rows += n >> l
	}
	return int64(rows)
}

// Bounds on what one proof reads: the leaf hashes of at most two subtrees
// of 2^nodeFloor leaves (the one around the leaf or the old size, and the
// right edge of the tree) and at most two rows per higher level.
const (
	maxLeafHashesPerProof = 2 << nodeFloor
	maxNodeRowsPerProof   = 2 * (64 - nodeFloor)
)

// checkProofs compares the stored log's inclusion and consistency proofs at
// size with ref's, byte for byte, verifies them with logverify, and checks
// the work bound of each.
func checkProofs(t *testing.T, e *env, ref *testonly.Tree, size uint64, indices, froms []uint64) {
	t.Helper()
	ctx := context.Background()
	root := ref.HashAt(size)
	r, err := loadRange(ctx, e.pool, size)
	if err != nil {
		t.Fatalf("size %d: %v", size, err)
	}
	if got, _ := rootOf(r); !bytes.Equal(got, root) {
		t.Fatalf("size %d: root %x from storage, %x in the reference tree", size, got, root)
	}
	for _, index := range indices {
		var cost fetchCost
		ps, err := e.log.inclusionProofs(ctx, []uint64{index}, size, &cost)
		if err != nil {
			t.Fatalf("inclusion %d in %d: %v", index, size, err)
		}
		want, err := ref.InclusionProof(index, size)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(ps[0], want, bytes.Equal) {
			t.Fatalf("inclusion %d in %d: stored log gives %x, reference %x", index, size, ps[0], want)
		}
		if err := VerifyInclusion(synthLeaf(index), index, size, ps[0], root); err != nil {
			t.Fatalf("inclusion %d in %d: %v", index, size, err)
		}
		if cost.LeafHashes > maxLeafHashesPerProof || cost.NodeRows > maxNodeRowsPerProof || cost.HashOps >= maxLeafHashesPerProof {
			t.Fatalf("inclusion %d in %d cost %+v", index, size, cost)
		}
	}
	for _, from := range froms {
		var cost fetchCost
		p, err := e.log.consistencyProof(ctx, from, size, &cost)
		if err != nil {
			t.Fatalf("consistency %d → %d: %v", from, size, err)
		}
		want, err := ref.ConsistencyProof(from, size)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.EqualFunc(p, want, bytes.Equal) {
			t.Fatalf("consistency %d → %d: stored log gives %x, reference %x", from, size, p, want)
		}
		if from > 0 {
			if err := VerifyConsistency(from, size, p, ref.HashAt(from), root); err != nil {
				t.Fatalf("consistency %d → %d: %v", from, size, err)
			}
		}
		if cost.LeafHashes > maxLeafHashesPerProof || cost.NodeRows > maxNodeRowsPerProof {
			t.Fatalf("consistency %d → %d cost %+v", from, size, cost)
		}
	}
}

// around returns the values near each point (point-2 … point+2) that lie
// in [lo, hi).
func around(lo, hi uint64, points ...uint64) []uint64 {
	var out []uint64
	for _, p := range points {
		for d := range uint64(5) {
			if v := p + d; v >= 2 && v-2 >= lo && v-2 < hi {
				out = append(out, v-2)
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// TestStoredProofsMatchReferenceTree grows a log of 70,000 leaves through
// the sequencer's write path and checks, at sizes around every boundary of
// the node floor and of higher powers of two, that inclusion and consistency
// proofs (and roots) from storage equal those of an in-memory tree
// (transparency-dev/merkle/testonly) byte for byte and verify with
// logverify, within the bound on rows read.
func TestStoredProofsMatchReferenceTree(t *testing.T) {
	e := newEnv(t)
	ref := testonly.New(hasher)
	const n = 70000
	appendSynth(t, e, ref, n, nodeFloor)
	if got, want := count(t, e.pool, `SELECT count(*) FROM log_nodes`), nodeRowsFor(n, nodeFloor); got != want {
		t.Fatalf("%d rows in log_nodes, want %d", got, want)
	}
	if got := count(t, e.pool, `SELECT count(*) FROM log_nodes WHERE level < $1`, nodeFloor); got != 0 {
		t.Fatalf("%d rows below the floor", got)
	}
	const tile = 1 << nodeFloor
	var sizes []uint64
	sizes = append(sizes, around(1, n+1, 1, 2, 3, 4, tile/2, tile, 2*tile, 3*tile, 4*tile, 7*tile, 1<<8, 1<<10, 1<<12, 1<<13, 1<<16, n)...)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 6 {
		sizes = append(sizes, 1+rng.Uint64N(n))
	}
	for _, size := range sizes {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			points := []uint64{0, size / 2, size - 1}
			for b := uint64(tile); b < size; b *= 2 {
				points = append(points, b, size&^(b-1))
			}
			indices := around(0, size, points...)
			froms := around(0, size+1, append(points, size)...)
			for range 4 {
				indices = append(indices, rng.Uint64N(size))
				froms = append(froms, rng.Uint64N(size+1))
			}
			checkProofs(t, e, ref, size, indices, froms)
		})
	}
}

// TestStoredProofsMatchRFC6962 checks inclusion and consistency proofs of
// sizes up to 600 (more than two subtrees of the floor: every pair for the
// small sizes and those around the floor's boundaries, a spread of pairs for
// the others) against the recursive definitions of RFC 6962 section 2.1,
// which share no code with the proof package.
func TestStoredProofsMatchRFC6962(t *testing.T) {
	e := newEnv(t)
	ref := testonly.New(hasher)
	const n = 600
	appendSynth(t, e, ref, n, nodeFloor)
	var leaves [][]byte
	for i := range uint64(n) {
		leaves = append(leaves, logverify.LeafHash(synthLeaf(i)))
	}
	ctx := context.Background()
	full := map[uint64]bool{}
	for _, size := range around(1, n+1, 1<<nodeFloor, 2<<nodeFloor) {
		full[size] = true
	}
	for size := uint64(1); size <= n; size++ {
		step := max(1, size/11)
		if full[size] || size <= 40 {
			step = 1
		} else if size%7 != 0 {
			continue
		}
		for index := uint64(0); index < size; index += step {
			p, err := e.log.InclusionProof(ctx, index, size)
			if err != nil {
				t.Fatal(err)
			}
			if want := rfcPath(index, leaves[:size]); !slices.EqualFunc(p, want, bytes.Equal) {
				t.Fatalf("inclusion %d in %d: %x, RFC 6962 PATH %x", index, size, p, want)
			}
		}
		for from := uint64(1); from <= size; from += step {
			p, err := e.log.ConsistencyProof(ctx, from, size)
			if err != nil {
				t.Fatal(err)
			}
			if want := rfcSubproof(from, leaves[:size], true); !slices.EqualFunc(p, want, bytes.Equal) {
				t.Fatalf("consistency %d → %d: %x, RFC 6962 PROOF %x", from, size, p, want)
			}
		}
	}
}

// rfcSplit is k of RFC 6962: the largest power of two smaller than n.
func rfcSplit(n uint64) uint64 { return 1 << (bits.Len64(n-1) - 1) }

// rfcMTH is MTH(D[n]) of RFC 6962, over leaf hashes.
func rfcMTH(h [][]byte) []byte {
	switch len(h) {
	case 0:
		return hasher.EmptyRoot()
	case 1:
		return h[0]
	}
	k := rfcSplit(uint64(len(h)))
	return hasher.HashChildren(rfcMTH(h[:k]), rfcMTH(h[k:]))
}

// rfcPath is PATH(m, D[n]) of RFC 6962.
func rfcPath(m uint64, h [][]byte) [][]byte {
	n := uint64(len(h))
	if n <= 1 {
		return [][]byte{}
	}
	k := rfcSplit(n)
	if m < k {
		return append(rfcPath(m, h[:k]), rfcMTH(h[k:]))
	}
	return append(rfcPath(m-k, h[k:]), rfcMTH(h[:k]))
}

// rfcSubproof is SUBPROOF(m, D[n], b) of RFC 6962.
func rfcSubproof(m uint64, h [][]byte, b bool) [][]byte {
	n := uint64(len(h))
	if m == n {
		if b {
			return [][]byte{}
		}
		return [][]byte{rfcMTH(h)}
	}
	k := rfcSplit(n)
	if m <= k {
		return append(rfcSubproof(m, h[:k], b), rfcMTH(h[k:]))
	}
	return append(rfcSubproof(m-k, h[k:], false), rfcMTH(h[:k]))
}

// FuzzStoredProofs: for any (index, from, size) within a stored log of 3,000
// leaves, the stored proofs equal the reference tree's.
func FuzzStoredProofs(f *testing.F) {
	e := newEnv(f)
	ref := testonly.New(hasher)
	const n = 3000
	appendSynth(f, e, ref, n, nodeFloor)
	for _, s := range [][3]uint64{{0, 1, 1}, {255, 256, 256}, {256, 255, 257}, {0, 0, 3000}, {2999, 1024, 3000},
		{511, 767, 769}, {1000, 2047, 2049}, {128, 129, 383}} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, index, from, size uint64) {
		size = 1 + size%n
		index %= size
		from %= size + 1
		checkProofs(t, e, ref, size, []uint64{index}, []uint64{from})
	})
}

// TestReceiptProofsReadOnce: the proofs of several leaves, fetched together
// as Receipts does, equal the proofs fetched one by one.
func TestReceiptProofsReadOnce(t *testing.T) {
	e := newEnv(t)
	ref := testonly.New(hasher)
	appendSynth(t, e, ref, 5000, nodeFloor)
	ctx := context.Background()
	indices := []uint64{0, 1, 255, 256, 257, 4095, 4096, 4999}
	var cost fetchCost
	ps, err := e.log.inclusionProofs(ctx, indices, 5000, &cost)
	if err != nil {
		t.Fatal(err)
	}
	for k, i := range indices {
		want, _ := ref.InclusionProof(i, 5000)
		if !slices.EqualFunc(ps[k], want, bytes.Equal) {
			t.Fatalf("leaf %d: %x, want %x", i, ps[k], want)
		}
	}
	if _, err := e.log.inclusionProofs(ctx, []uint64{3, 5000}, 5000, nil); !errors.Is(err, ErrBadRange) {
		t.Fatalf("a proof of a leaf beyond the tree: %v", err)
	}
	if _, err := e.log.InclusionProof(ctx, 3, 5001); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a proof in a tree beyond the head: %v", err)
	}
	if _, err := e.log.ConsistencyProof(ctx, 300, 299); !errors.Is(err, ErrBadRange) {
		t.Fatalf("a consistency proof backwards: %v", err)
	}
}
