package compress

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/golang/snappy"
	"github.com/stretchr/testify/require"
)

func TestSnappyRoundTrip(t *testing.T) {
	var c Codec = Snappy{}
	src := bytes.Repeat([]byte(`{"id":1,"name":"alpha-echo","active":true}`), 100)
	dst := make([]byte, 64<<10)
	n, ok := c.Compress(dst, src)
	require.True(t, ok)
	require.Less(t, n, len(src))
	out := make([]byte, 64<<10)
	m, err := c.Decompress(out, dst[:n])
	require.NoError(t, err)
	require.Equal(t, src, out[:m])
}

func TestSnappyKeepsRawWhenNoSaving(t *testing.T) {
	c := Snappy{}
	random := make([]byte, 4096)
	_, _ = rand.Read(random)
	dst := make([]byte, 64<<10)
	_, ok := c.Compress(dst, random)
	require.False(t, ok, "random data must go raw")
	_, ok = c.Compress(dst, []byte("short"))
	require.False(t, ok, "below threshold must go raw")
}

func TestSnappyHostileInput(t *testing.T) {
	c := Snappy{}
	out := make([]byte, 1024)
	// A header declaring far more output than out holds.
	big := snappy.Encode(nil, make([]byte, 4096))
	_, err := c.Decompress(out, big)
	require.True(t, errors.Is(err, ErrTooLarge), "%v", err)
	_, err = c.Decompress(out, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	require.True(t, errors.Is(err, ErrCorrupt), "%v", err)
	_, err = c.Decompress(out, []byte{0x10, 0x00, 0x01})
	require.True(t, errors.Is(err, ErrCorrupt), "%v", err)
}

func FuzzSnappyDecompress(f *testing.F) {
	f.Add(snappy.Encode(nil, []byte("hello hello hello hello")))
	f.Add([]byte{0x05, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		out := make([]byte, 4096)
		n, err := Snappy{}.Decompress(out, data)
		if err == nil && n > len(out) {
			t.Fatalf("n %d > len %d", n, len(out))
		}
	})
}
