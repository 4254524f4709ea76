// Package tlsrecords parses the TLS records of a byte stream, for tests
// that check how a TLS connection cuts its output into records.
package tlsrecords

import "sync"

// ContentAppData is the record type of application data (and, in TLS 1.3,
// of every encrypted record: the handshake's encrypted flight and
// post-handshake messages carry it as their outer type too).
const ContentAppData = 23

// FullBody is the body of a TLS 1.3 record carrying 16 KiB of plaintext:
// the plaintext, its content type byte and the AEAD tag.
const FullBody = 16384 + 1 + 16

// Meter is an io.Writer that parses the records of the bytes written to it
// and notes the body size of each application-data record, in order. It
// is safe for one writer and concurrent readers.
type Meter struct {
	mu    sync.Mutex // guards the fields below (the stream's goroutine writes, the test reads)
	hdr   []byte     // the header of the next record, while incomplete
	left  int        // body bytes of the current record still to pass
	sizes []int      // bodies of application-data records
}

// Write parses b as the next bytes of the stream; it never fails.
func (m *Meter) Write(b []byte) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(b)
	for len(b) > 0 {
		if m.left > 0 {
			k := min(m.left, len(b))
			m.left -= k
			b = b[k:]
			continue
		}
		k := min(5-len(m.hdr), len(b))
		m.hdr = append(m.hdr, b[:k]...)
		b = b[k:]
		if len(m.hdr) < 5 {
			break
		}
		m.left = int(m.hdr[3])<<8 | int(m.hdr[4])
		if m.hdr[0] == ContentAppData {
			m.sizes = append(m.sizes, m.left)
		}
		m.hdr = m.hdr[:0]
	}
	return n, nil
}

// Sizes returns a copy of the application-data record bodies so far, in
// order.
func (m *Meter) Sizes() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.sizes...)
}
