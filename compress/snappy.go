package compress

import (
	"fmt"

	"github.com/golang/snappy"
)

// Snappy defaults, as in SolidFrame's snappy plugin.
const (
	// DefaultSnappyThreshold is the largest payload sent raw without trying:
	// SolidFrame compresses only payloads larger than 1024 bytes, so a
	// 1024-byte payload travels raw.
	DefaultSnappyThreshold = 1024
	// DefaultSnappyMinSaving is the smallest saving, in bytes, that keeps a
	// compressed payload.
	DefaultSnappyMinSaving = 32
)

// Snappy is the snappy block-format codec. The zero value uses the defaults.
type Snappy struct {
	// Threshold is the largest payload left raw without trying: only
	// payloads longer than Threshold bytes are compressed. Zero means
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
	ms := s.MinSaving
	if ms == 0 {
		ms = DefaultSnappyMinSaving
	}
	if len(src) <= s.RawLimit() || len(dst) < snappy.MaxEncodedLen(len(src)) {
		return 0, false
	}
	out := snappy.Encode(dst, src)
	if len(out) > len(src)-ms {
		return 0, false
	}
	return len(out), true
}

// RawLimit implements RawLimiter: payloads of at most Threshold bytes are
// never compressed.
func (s Snappy) RawLimit() int {
	if s.Threshold == 0 {
		return DefaultSnappyThreshold
	}
	return s.Threshold
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
