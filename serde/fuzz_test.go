package serde_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/ipcframe/ipcframe/serde"
)

// fuzzLimits are small so that arbitrary input cannot make the decoder
// allocate much.
var fuzzLimits = serde.Limits{MaxString: 1 << 10, MaxContainer: 64, MaxStream: 1 << 12}

// fuzzRoots are the values FuzzDecode decodes into, chosen by the first
// input byte: the rich message, a bare polymorphic field (reaching every
// registered type quickly) and a stream between two fields.
var fuzzRoots = []func() serde.Type{
	func() serde.Type { return new(rich) },
	func() serde.Type { return new(anyMsg) },
	func() serde.Type { return &streamMsg{dst: &checkSink{}} },
}

// FuzzDecode decodes arbitrary bytes (after a selector byte) into a test
// message, whole and a byte at a time; both must agree and never panic, and
// a decoded value must survive a round trip. Seeds live in
// testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	reg := testRegistry()
	e := serde.NewEncoder(reg, fuzzLimits)
	for seed := range uint64(3) {
		f.Add(append([]byte{0}, encodeAll(f, e, newGen(seed).rich(), 4096)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) == 0 {
			return
		}
		root := fuzzRoots[int(data[0])%len(fuzzRoots)]
		data = data[1:]
		d := serde.NewDecoder(reg, fuzzLimits)
		whole := root()
		d.Reset(whole)
		n1, done1, err1 := d.Decode(data)

		d.Reset(root()) // reuse after a possible error
		piece := root()
		d.Reset(piece)
		var n2 int
		var done2 bool
		var err2 error
		for n2 < len(data) {
			var k int
			k, done2, err2 = d.Decode(data[n2 : n2+1])
			n2 += k
			if done2 || err2 != nil {
				break
			}
		}
		require.Equal(t, err1 == nil, err2 == nil, "whole: %v, pieces: %v", err1, err2)
		if err1 != nil {
			require.Equal(t, err1.Error(), err2.Error())
			return
		}
		require.Equal(t, done1, done2)
		require.Equal(t, n1, n2)
		if !done1 {
			return
		}
		switch w := whole.(type) {
		case *rich:
			requireRichEqual(t, w, piece.(*rich))
			enc := encodeAll(t, e, w, 17)
			again := new(rich)
			decodeSplit(t, d, again, enc, func() int { return 13 })
			requireRichEqual(t, w, again)
		case *anyMsg:
			// Any may hold a rich value whose NaNs defeat DeepEqual;
			// re-encode and decode again. (The lengths may differ: the
			// decoder accepts non-minimal integers and duplicate map keys.)
			enc := encodeAll(t, e, w, 17)
			decodeSplit(t, d, new(anyMsg), enc, func() int { return 13 })
		case *streamMsg:
			p := piece.(*streamMsg)
			require.Equal(t, w.dst.(*checkSink).n, p.dst.(*checkSink).n)
			require.Equal(t, 1, p.dst.(*checkSink).closed)
			require.Equal(t, w.Tail, p.Tail)
		}
	})
}

var updateCorpus = flag.Bool("serde.update-corpus", false, "rewrite the generated seeds of testdata/fuzz/FuzzDecode")

// TestFuzzCorpus checks that the generated seeds of testdata/fuzz/FuzzDecode
// are committed as the encoder writes them today, and rewrites them with
// -serde.update-corpus. Hand-written seeds in the folder are left alone.
func TestFuzzCorpus(t *testing.T) {
	reg := testRegistry()
	e := serde.NewEncoder(reg, fuzzLimits)
	seeds := map[string][]byte{}
	for i, seed := range []uint64{11, 12, 13, 14} {
		seeds[fmt.Sprintf("valid-%d", i)] = append([]byte{0}, encodeAll(t, e, newGen(seed).rich(), 4096)...)
	}
	for i, seed := range []uint64{21, 22, 23} {
		m := &anyMsg{A: newGen(seed).rich()}
		if i == 1 {
			m.A = &verInner{X: 5, Extra: "x"}
		}
		seeds[fmt.Sprintf("valid-any-%d", i)] = append([]byte{1}, encodeAll(t, e, m, 4096)...)
	}
	seeds["valid-stream"] = append([]byte{2}, encodeAll(t, e, &streamMsg{ID: 9, src: &patternSource{left: 40, max: 7}, Tail: "z"}, 4096)...)
	seeds["stream-too-long"] = append([]byte{2, 0}, append([]byte{0xff, 0xff}, make([]byte, 100)...)...)
	v := seeds["valid-0"]
	seeds["truncated"] = v[:len(v)/2]
	flip := append([]byte{}, v...)
	for i := 3; i < len(flip); i += 17 {
		flip[i] ^= 0x5a
	}
	seeds["bitflips"] = flip
	seeds["huge-string"] = append(make([]byte, 17), serde.AppendCross(nil, 1<<40)...)
	seeds["bad-bool"] = []byte{0, 7}
	seeds["int-overflow"] = []byte{0, 0, 2, 1, 1}
	seeds["bad-cross"] = append([]byte{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0x0f)
	seeds["unknown-type"] = []byte{1, 0x09, 0x63}
	seeds["empty"] = nil
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	if *updateCorpus {
		require.NoError(t, os.MkdirAll(dir, 0o755))
	}
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		path := filepath.Join(dir, name)
		if *updateCorpus {
			require.NoError(t, os.WriteFile(path, []byte(body), 0o644))
			continue
		}
		got, err := os.ReadFile(path)
		require.NoError(t, err, "seed %s missing: run with -serde.update-corpus", name)
		require.Equal(t, body, string(got), "seed %s is stale: run with -serde.update-corpus", name)
	}
}
