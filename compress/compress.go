// Package compress holds ipcframe's per-packet compression codecs.
//
// A codec compresses one packet payload (at most 64 KiB) at a time. The
// writer keeps a compressed payload only when it is smaller than the original
// by at least the codec's minimum saving; otherwise the packet goes raw, so
// incompressible data costs no extra bytes. Adaptive adds a per-connection
// back-off (Backoff): a connection that keeps seeing incompressible packets
// stops trying for a while and probes again later, so random data costs
// about what compression off costs.
//
// Decompression is hostile-input safe: a codec checks the declared
// decompressed length against the destination before writing, and never
// allocates.
package compress

import "errors"

// Codec compresses and decompresses packet payloads. Implementations must be
// safe for concurrent use (ipc calls one codec from every event loop).
type Codec interface {
	// Name identifies the codec in logs and configuration.
	Name() string
	// Compress compresses src into dst and returns the compressed length.
	// It returns ok == false, leaving the packet raw, when src is not longer
	// than the codec's threshold, when dst is too small, or when the result
	// does not save enough bytes.
	Compress(dst, src []byte) (n int, ok bool)
	// Decompress decompresses src into dst and returns the length. It fails
	// with ErrCorrupt on malformed input and ErrTooLarge when the output
	// would not fit dst.
	Decompress(dst, src []byte) (int, error)
}

// Errors returned by Decompress.
var (
	// ErrCorrupt reports malformed compressed data.
	ErrCorrupt = errors.New("compress: corrupt input")
	// ErrTooLarge reports compressed data that declares more output than
	// the destination holds.
	ErrTooLarge = errors.New("compress: decompressed size exceeds limit")
)
