// Package socks5 is the client side of a SOCKS5 handshake (RFC 1928
// CONNECT, with RFC 1929 username/password authentication) as a pure state
// machine: it takes the bytes the proxy sent and returns the bytes to send
// next. It touches no socket and no clock, so the same code runs on a
// blocking connection (ipc's dial step) or on an event loop's raw bytes,
// and its tests and fuzz target need no network.
//
// The handshake is three exchanges at most:
//
//	greeting   VER=5 NMETHODS METHODS...      -> VER=5 METHOD
//	auth       VER=1 ULEN USER PLEN PASS      -> VER STATUS       (method 2 only)
//	connect    VER=5 CMD=1 RSV=0 ATYP ADDR PORT -> VER=5 REP RSV ATYP ADDR PORT
//
// After a successful connect reply the connection carries the
// destination's bytes. The client never reads past a reply: Need tells how
// long the reply is from its first bytes, so a blocking caller reads
// exactly that many and leaves the destination's first bytes in the socket.
package socks5

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
)

// Errors. Every failure matches exactly one of ErrProtocol, ErrNoMethod,
// ErrAuth, ErrRefused or ErrBadRequest with errors.Is.
var (
	// ErrProtocol: the proxy sent bytes that are not a SOCKS5 reply (a
	// wrong version, a method we did not offer, an unknown address type).
	ErrProtocol = errors.New("socks5: proxy broke the protocol")
	// ErrNoMethod: the proxy accepts none of the authentication methods
	// offered (it answered 0xFF), for example it wants a password and none
	// is configured.
	ErrNoMethod = errors.New("socks5: proxy accepts none of the offered authentication methods")
	// ErrAuth: the proxy rejected the username and password (RFC 1929).
	ErrAuth = errors.New("socks5: authentication failed")
	// ErrRefused: the proxy answered the CONNECT with a failure; the error
	// is a *ReplyError that names the reply code.
	ErrRefused = errors.New("socks5: proxy refused the connection")
	// ErrBadRequest: the request cannot be expressed in SOCKS5 (a host name
	// or credential longer than 255 bytes, an empty username).
	ErrBadRequest = errors.New("socks5: bad request")
)

// ReplyError is a CONNECT reply other than success (RFC 1928 §6).
type ReplyError struct {
	Code byte // REP
}

var replyNames = [...]string{
	1: "general SOCKS server failure",
	2: "connection not allowed by ruleset",
	3: "network unreachable",
	4: "host unreachable",
	5: "connection refused",
	6: "TTL expired",
	7: "command not supported",
	8: "address type not supported",
}

// Error names the reply.
func (e *ReplyError) Error() string {
	name := "unassigned reply"
	if int(e.Code) < len(replyNames) && replyNames[e.Code] != "" {
		name = replyNames[e.Code]
	}
	return fmt.Sprintf("%s: %s (%d)", ErrRefused.Error(), name, e.Code)
}

// Is makes a ReplyError match ErrRefused.
func (e *ReplyError) Is(target error) bool { return target == ErrRefused }

// Protocol constants.
const (
	version        = 5
	authVersion    = 1
	methodNone     = 0
	methodPassword = 2
	methodNoneOK   = 0xFF
	cmdConnect     = 1
	atypIPv4       = 1
	atypDomain     = 3
	atypIPv6       = 4
)

// Handshake states.
const (
	stateMethod  = iota // waiting for the method selection
	stateAuth           // waiting for the RFC 1929 status
	stateConnect        // waiting for the CONNECT reply
	stateDone           // connected
	stateFailed
)

// Client is one handshake. It is not safe for concurrent use; the zero
// value is not usable (NewClient).
type Client struct {
	greeting []byte
	auth     []byte // RFC 1929 request; nil without credentials
	connect  []byte
	state    int
}

// NewClient returns the handshake of a CONNECT to host:port. An IP literal
// host is sent as an address; a name is sent for the proxy to resolve. A
// non-empty user offers username/password authentication besides none.
func NewClient(host string, port uint16, user, pass string) (*Client, error) {
	c := &Client{}
	if user != "" || pass != "" {
		if len(user) == 0 || len(user) > 255 || len(pass) > 255 {
			return nil, fmt.Errorf("%w: username must be 1 to 255 bytes and password at most 255", ErrBadRequest)
		}
		c.greeting = []byte{version, 2, methodNone, methodPassword}
		c.auth = make([]byte, 0, 3+len(user)+len(pass))
		c.auth = append(c.auth, authVersion, byte(len(user)))
		c.auth = append(c.auth, user...)
		c.auth = append(c.auth, byte(len(pass)))
		c.auth = append(c.auth, pass...)
	} else {
		c.greeting = []byte{version, 1, methodNone}
	}
	req := []byte{version, cmdConnect, 0}
	if ip, err := netip.ParseAddr(host); err == nil {
		ip = ip.Unmap()
		if ip.Is4() {
			req = append(req, atypIPv4)
		} else {
			req = append(req, atypIPv6)
		}
		req = append(req, ip.AsSlice()...)
	} else {
		if len(host) == 0 || len(host) > 255 {
			return nil, fmt.Errorf("%w: host name must be 1 to 255 bytes", ErrBadRequest)
		}
		req = append(req, atypDomain, byte(len(host)))
		req = append(req, host...)
	}
	c.connect = binary.BigEndian.AppendUint16(req, port)
	return c, nil
}

// Start returns the greeting, the first bytes to send.
func (c *Client) Start() []byte { return c.greeting }

// Done reports whether the proxy accepted the CONNECT: the connection now
// carries the destination's bytes.
func (c *Client) Done() bool { return c.state == stateDone }

// Need returns the length of the proxy's next reply as far as its first
// bytes, in, tell: a reader that reads until it holds Need(in) bytes and
// asks again never reads past the reply.
func (c *Client) Need(in []byte) int {
	if c.state != stateConnect {
		return 2
	}
	if len(in) < 4 {
		return 4
	}
	switch in[3] {
	case atypIPv4:
		return 4 + 4 + 2
	case atypIPv6:
		return 4 + 16 + 2
	case atypDomain:
		if len(in) < 5 {
			return 5
		}
		return 5 + int(in[4]) + 2
	}
	return len(in) // Feed reports the bad address type
}

// Feed parses the proxy's next reply at the front of in. With less than a
// whole reply it returns 0, nil, nil (unless the bytes seen are wrong
// already). Otherwise it returns how many bytes the reply took and the
// bytes to send next, nil once connected. Bytes after the CONNECT reply
// are the destination's and are not consumed. After an error the handshake
// is over.
func (c *Client) Feed(in []byte) (n int, out []byte, err error) {
	n, out, err = c.feed(in)
	if err != nil {
		c.state = stateFailed
	}
	return n, out, err
}

func (c *Client) feed(in []byte) (int, []byte, error) {
	if len(in) > 0 && c.state != stateAuth && in[0] != version {
		return 0, nil, fmt.Errorf("%w: reply version %d, want 5", ErrProtocol, in[0])
	}
	switch c.state {
	case stateMethod:
		if len(in) < 2 {
			return 0, nil, nil
		}
		switch {
		case in[1] == methodNoneOK:
			return 0, nil, ErrNoMethod
		case in[1] == methodNone:
			c.state = stateConnect
			return 2, c.connect, nil
		case in[1] == methodPassword && c.auth != nil:
			c.state = stateAuth
			return 2, c.auth, nil
		}
		return 0, nil, fmt.Errorf("%w: proxy chose method %d, not offered", ErrProtocol, in[1])
	case stateAuth:
		if len(in) < 2 {
			return 0, nil, nil
		}
		// RFC 1929 says version 1; some servers answer 5. Accept both.
		if in[0] != authVersion && in[0] != version {
			return 0, nil, fmt.Errorf("%w: authentication reply version %d", ErrProtocol, in[0])
		}
		if in[1] != 0 {
			return 0, nil, fmt.Errorf("%w (status %d)", ErrAuth, in[1])
		}
		c.state = stateConnect
		return 2, c.connect, nil
	case stateConnect:
		if len(in) >= 2 && in[1] != 0 {
			return 0, nil, &ReplyError{Code: in[1]}
		}
		if len(in) >= 4 && in[3] != atypIPv4 && in[3] != atypIPv6 && in[3] != atypDomain {
			return 0, nil, fmt.Errorf("%w: address type %d", ErrProtocol, in[3])
		}
		need := c.Need(in)
		if len(in) < need || len(in) < 4 {
			return 0, nil, nil
		}
		c.state = stateDone
		return need, nil, nil
	}
	return 0, nil, fmt.Errorf("%w: handshake already over", ErrProtocol)
}

// maxReply is the longest reply: a CONNECT reply with a 255-byte name.
const maxReply = 5 + 255 + 2

// Run drives the handshake over a blocking connection: it writes the
// greeting and each request and reads exactly each reply, so the
// destination's first bytes stay unread. I/O errors are returned as they
// are (wrapped); deadlines are the caller's (set them on the connection).
func (c *Client) Run(rw io.ReadWriter) error {
	out := c.Start()
	var buf [maxReply]byte
	for {
		if _, err := rw.Write(out); err != nil {
			return fmt.Errorf("socks5: writing request: %w", err)
		}
		in := buf[:0]
		for {
			if need := c.Need(in); need > len(in) {
				if _, err := io.ReadFull(rw, buf[len(in):need]); err != nil {
					return fmt.Errorf("socks5: reading reply: %w", err)
				}
				in = buf[:need]
			}
			n, next, err := c.Feed(in)
			if err != nil {
				return err
			}
			if n > 0 {
				if c.Done() {
					return nil
				}
				out = next
				break
			}
		}
	}
}
