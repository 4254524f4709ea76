package compress

import (
	"fmt"

	"github.com/golang/snappy"
)

// Snappy defaults, as in SolidFrame's snappy plugin.
const (
	// DefaultSnappyThreshold is the smallest payload worth compressing.
	DefaultSnappyThreshold = 1024
	// DefaultSnappyMinSaving is the smallest saving, in bytes, that keeps a
	// compressed payload.
	DefaultSnappyMinSaving = 32
)

// Snappy is the snappy block-format codec. The zero value uses the defaults.
type Snappy struct {
	// Threshold is the smallest payload compressed; zero means
	// DefaultSnappyThreshold.
	Threshold int
	// MinSaving is the smallest saving kept; zero means
	// DefaultSnappyMinSaving.
	MinSaving int
}

// Name returns "snappy".
func (Snappy) Name() string { return "snappy" }

// Compress implements Codec.
func (s Snappy) Compress(dst, src []byte) (int, bool) {
	th, ms := s.Threshold, s.MinSaving
	if th == 0 {
		th = DefaultSnappyThreshold
	}
	if ms == 0 {
		ms = DefaultSnappyMinSaving
	}
	if len(src) < th || len(dst) < snappy.MaxEncodedLen(len(src)) {
		return 0, false
	}
	out := snappy.Encode(dst, src)
	if len(out) > len(src)-ms {
		return 0, false
	}
	return len(out), true
}

// Decompress implements Codec. The declared length is checked against dst
// before any byte is written.
func (Snappy) Decompress(dst, src []byte) (int, error) {
	n, err := snappy.DecodedLen(src)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if n > len(dst) {
		return 0, fmt.Errorf("%w: %d > %d", ErrTooLarge, n, len(dst))
	}
	out, err := snappy.Decode(dst[:n], src)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	return len(out), nil
}
