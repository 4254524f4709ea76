//go:build !linux

package buffers

// prefault does nothing where pages cannot be populated ahead.
func prefault(b []byte) { prefaultOff.Store(true) }
