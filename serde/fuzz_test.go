package serde_test

import (
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

// FuzzDecode decodes arbitrary bytes into the rich test message, whole and a
// byte at a time; both must agree, never panic, and a decoded value must
// survive a round trip. Seeds live in testdata/fuzz/FuzzDecode.
func FuzzDecode(f *testing.F) {
	reg := testRegistry()
	e := serde.NewEncoder(reg, fuzzLimits)
	for seed := range uint64(3) {
		f.Add(encodeAll(f, e, newGen(seed).rich(), 4096))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		d := serde.NewDecoder(reg, fuzzLimits)
		whole := new(rich)
		d.Reset(whole)
		n1, done1, err1 := d.Decode(data)

		d.Reset(new(rich)) // reuse after a possible error
		piece := new(rich)
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
		requireRichEqual(t, whole, piece)

		// Round trip.
		enc := encodeAll(t, e, whole, 17)
		again := new(rich)
		decodeSplit(t, d, again, enc, func() int { return 13 })
		requireRichEqual(t, whole, again)
	})
}

// TestWriteFuzzCorpus regenerates testdata/fuzz/FuzzDecode when
// SERDE_WRITE_CORPUS=1.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("SERDE_WRITE_CORPUS") != "1" {
		t.Skip("set SERDE_WRITE_CORPUS=1 to regenerate the seed corpus")
	}
	reg := testRegistry()
	e := serde.NewEncoder(reg, fuzzLimits)
	seeds := map[string][]byte{}
	for i, seed := range []uint64{11, 12, 13, 14} {
		seeds[fmt.Sprintf("valid-%d", i)] = encodeAll(t, e, newGen(seed).rich(), 4096)
	}
	v := seeds["valid-0"]
	seeds["truncated"] = v[:len(v)/2]
	flip := append([]byte{}, v...)
	for i := 3; i < len(flip); i += 17 {
		flip[i] ^= 0x5a
	}
	seeds["bitflips"] = flip
	seeds["huge-string"] = append(make([]byte, 16), serde.AppendCross(nil, 1<<40)...)
	seeds["bad-bool"] = []byte{7}
	seeds["int-overflow"] = []byte{0, 2, 1, 1}
	seeds["bad-cross"] = append([]byte{1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, 0x0f)
	seeds["empty"] = nil
	dir := filepath.Join("testdata", "fuzz", "FuzzDecode")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, b := range seeds {
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", b)
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644))
	}
}
