package compress

// Backoff is the policy by which a connection stops trying to compress
// packets that do not compress, and probes again later. The zero value means
// the defaults.
//
// A packet larger than the codec's RawLimit whose compression saves too
// little is a miss. After Misses consecutive misses the connection sends the
// next Min packets raw without trying, then tries one (a probe). A probe that
// misses doubles the number of packets skipped, up to Max; a packet that
// compresses resets the policy. So a stream of random data costs one attempt
// every Max packets, and a stream that becomes compressible is noticed
// within Max packets.
type Backoff struct {
	// Misses is the number of consecutive misses before skipping starts.
	// Zero means DefaultBackoffMisses; negative disables the back-off
	// (every packet is tried).
	Misses int
	// Min is the number of packets skipped after the first back-off. Zero
	// means DefaultBackoffMin.
	Min int
	// Max bounds the packets skipped between two probes. Zero means
	// DefaultBackoffMax; it is raised to Min if below.
	Max int
}

// Backoff defaults.
const (
	DefaultBackoffMisses = 4
	DefaultBackoffMin    = 8
	DefaultBackoffMax    = 256
)

// RawLimiter is implemented by codecs that never compress short payloads:
// payloads of at most RawLimit bytes travel raw and do not count as misses.
type RawLimiter interface {
	RawLimit() int
}

// Adaptive compresses one connection's packets with a codec under a Backoff
// policy. It is owned by the connection (not safe for concurrent use); the
// zero value compresses nothing.
type Adaptive struct {
	codec    Codec
	rawLimit int
	misses   int // back-off: consecutive misses before skipping
	min, max int

	streak int // consecutive misses
	skip   int // packets still to send raw without trying
	span   int // packets skipped after the next miss of a probe

	// Stats counts packets by outcome, for tests and monitoring.
	Stats AdaptiveStats
}

// AdaptiveStats counts an Adaptive's packets.
type AdaptiveStats struct {
	Compressed uint64 // tried and kept compressed
	Missed     uint64 // tried, sent raw
	Skipped    uint64 // not tried because of the back-off
	Small      uint64 // at most RawLimit bytes: not tried
}

// NewAdaptive returns the compressor for one connection; a nil codec
// compresses nothing.
func NewAdaptive(codec Codec, b Backoff) Adaptive {
	if b.Misses == 0 {
		b.Misses = DefaultBackoffMisses
	}
	if b.Min <= 0 {
		b.Min = DefaultBackoffMin
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	b.Max = max(b.Max, b.Min)
	a := Adaptive{codec: codec, misses: b.Misses, min: b.Min, max: b.Max, span: b.Min}
	if rl, ok := codec.(RawLimiter); ok {
		a.rawLimit = rl.RawLimit()
	}
	return a
}

// Enabled reports whether a codec is configured.
func (a *Adaptive) Enabled() bool { return a.codec != nil }

// Compress compresses src into dst if the policy allows a try and the
// codec keeps the result; it returns the compressed length and true, or
// false when src must travel raw.
func (a *Adaptive) Compress(dst, src []byte) (int, bool) {
	if a.codec == nil {
		return 0, false
	}
	if len(src) <= a.rawLimit {
		a.Stats.Small++
		return 0, false
	}
	if a.skip > 0 {
		a.skip--
		a.Stats.Skipped++
		return 0, false
	}
	n, ok := a.codec.Compress(dst, src)
	if ok && n < len(src) {
		a.Stats.Compressed++
		a.streak, a.span = 0, a.min
		return n, true
	}
	a.Stats.Missed++
	a.streak++
	switch {
	case a.misses < 0 || a.streak < a.misses:
	case a.streak == a.misses:
		a.skip = a.span
	default: // a probe missed
		a.span = min(2*a.span, a.max)
		a.skip = a.span
	}
	return 0, false
}
