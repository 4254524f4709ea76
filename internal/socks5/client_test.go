package socks5

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"
)

// script is a fake proxy's side of one handshake: what it expects to read
// before each reply, and the reply.
type script struct {
	expect [][]byte
	reply  [][]byte
}

// scriptConn plays a script as an io.ReadWriter and records what it read.
type scriptConn struct {
	t    *testing.T
	s    script
	step int
	in   bytes.Buffer // the current reply, unread part
	sent [][]byte
}

func (c *scriptConn) Write(p []byte) (int, error) {
	c.sent = append(c.sent, append([]byte(nil), p...))
	if c.step < len(c.s.expect) {
		require.Equal(c.t, c.s.expect[c.step], p, "request %d", c.step)
	}
	if c.step < len(c.s.reply) {
		c.in.Write(c.s.reply[c.step])
	}
	c.step++
	return len(p), nil
}

func (c *scriptConn) Read(p []byte) (int, error) {
	if c.in.Len() == 0 {
		return 0, io.EOF
	}
	return c.in.Read(p)
}

func TestClientRun(t *testing.T) {
	connectIPv4 := []byte{5, 1, 0, 1, 127, 0, 0, 1, 0x1b, 0x58} // 127.0.0.1:7000
	okIPv4 := []byte{5, 0, 0, 1, 10, 0, 0, 1, 0x04, 0x38}
	tests := []struct {
		name       string
		host       string
		user, pass string
		s          script
		err        error
		unread     int // destination bytes left after the handshake
	}{
		{
			name: "no auth, IPv4",
			host: "127.0.0.1",
			s: script{
				expect: [][]byte{{5, 1, 0}, connectIPv4},
				reply:  [][]byte{{5, 0}, append(append([]byte{}, okIPv4...), "DEST"...)},
			},
			unread: 4,
		},
		{
			name: "name resolved by the proxy, bound address as a name",
			host: "db.example",
			s: script{
				expect: [][]byte{{5, 1, 0}, append([]byte{5, 1, 0, 3, 10}, append([]byte("db.example"), 0x1b, 0x58)...)},
				reply:  [][]byte{{5, 0}, append([]byte{5, 0, 0, 3, 3}, 'a', 'b', 'c', 0, 1)},
			},
		},
		{
			name: "IPv6",
			host: "::1",
			s: script{
				expect: [][]byte{{5, 1, 0}, {5, 1, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x1b, 0x58}},
				reply:  [][]byte{{5, 0}, append([]byte{5, 0, 0, 4}, make([]byte, 18)...)},
			},
		},
		{
			name: "password",
			host: "127.0.0.1", user: "u", pass: "pw",
			s: script{
				expect: [][]byte{{5, 2, 0, 2}, {1, 1, 'u', 2, 'p', 'w'}, connectIPv4},
				reply:  [][]byte{{5, 2}, {1, 0}, okIPv4},
			},
		},
		{
			name: "password offered, none chosen",
			host: "127.0.0.1", user: "u", pass: "pw",
			s: script{reply: [][]byte{{5, 0}, okIPv4}},
		},
		{
			name: "wrong password",
			host: "127.0.0.1", user: "u", pass: "bad",
			s:   script{reply: [][]byte{{5, 2}, {1, 1}}},
			err: ErrAuth,
		},
		{
			name: "no acceptable method",
			host: "127.0.0.1",
			s:    script{reply: [][]byte{{5, 0xff}}},
			err:  ErrNoMethod,
		},
		{
			name: "password chosen but not offered",
			host: "127.0.0.1",
			s:    script{reply: [][]byte{{5, 2}}},
			err:  ErrProtocol,
		},
		{
			name: "refused by ruleset",
			host: "127.0.0.1",
			s:    script{reply: [][]byte{{5, 0}, {5, 2, 0, 1, 0, 0, 0, 0, 0, 0}}},
			err:  ErrRefused,
		},
		{
			name: "garbage",
			host: "127.0.0.1",
			s:    script{reply: [][]byte{[]byte("HTTP/1.1 400 Bad Request\r\n")}},
			err:  ErrProtocol,
		},
		{
			name: "bad address type",
			host: "127.0.0.1",
			s:    script{reply: [][]byte{{5, 0}, {5, 0, 0, 9, 0, 0}}},
			err:  ErrProtocol,
		},
		{
			name: "closed mid-reply",
			host: "127.0.0.1",
			s:    script{reply: [][]byte{{5, 0}, {5, 0, 0, 1, 1}}},
			err:  io.ErrUnexpectedEOF,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := NewClient(tt.host, 7000, tt.user, tt.pass)
			require.NoError(t, err)
			conn := &scriptConn{t: t, s: tt.s}
			err = c.Run(conn)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				require.False(t, c.Done())
				return
			}
			require.NoError(t, err)
			require.True(t, c.Done())
			require.Equal(t, tt.unread, conn.in.Len(), "Run read past the reply")
		})
	}
}

func TestReplyErrorNames(t *testing.T) {
	err := error(&ReplyError{Code: 2})
	require.ErrorIs(t, err, ErrRefused)
	require.Contains(t, err.Error(), "not allowed by ruleset")
	require.Contains(t, (&ReplyError{Code: 77}).Error(), "unassigned")
	var re *ReplyError
	require.True(t, errors.As(err, &re))
	require.Equal(t, byte(2), re.Code)
}

func TestNewClientBadRequest(t *testing.T) {
	long := string(bytes.Repeat([]byte("a"), 256))
	for _, args := range [][3]string{{long, "", ""}, {"h", long, "p"}, {"h", "u", long}, {"h", "", "p"}, {"", "", ""}} {
		_, err := NewClient(args[0], 1, args[1], args[2])
		require.ErrorIs(t, err, ErrBadRequest, "%q", args)
	}
}

// TestFeedByteByByte feeds a whole exchange one byte at a time, as an
// event loop may see it, with the destination's bytes right behind.
func TestFeedByteByByte(t *testing.T) {
	c, err := NewClient("127.0.0.1", 7000, "u", "p")
	require.NoError(t, err)
	stream := [][]byte{{5, 2}, {1, 0}, {5, 0, 0, 3, 2, 'h', 'i', 0, 80, 'X', 'Y'}}
	for _, reply := range stream {
		var in []byte
		for i := 0; ; i++ {
			in = append(in, reply[i])
			n, _, err := c.Feed(in)
			require.NoError(t, err)
			if n > 0 {
				in = in[n:]
				break
			}
		}
		require.Empty(t, in)
	}
	require.True(t, c.Done())
}

// FuzzFeed: arbitrary proxy bytes never panic, never consume more than
// given, and either finish, fail, or ask for more.
func FuzzFeed(f *testing.F) {
	f.Add([]byte{5, 0, 5, 0, 0, 1, 1, 2, 3, 4, 0, 80}, true)
	f.Add([]byte{5, 2, 1, 0, 5, 0, 0, 3, 3, 'a', 'b', 'c', 0, 80}, false)
	f.Add([]byte("HTTP/1.1 200 OK\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, data []byte, password bool) {
		user, pass := "", ""
		if password {
			user, pass = "u", "p"
		}
		c, err := NewClient("example.org", 443, user, pass)
		if err != nil {
			t.Fatal(err)
		}
		for len(data) > 0 && !c.Done() {
			n, _, err := c.Feed(data)
			if err != nil {
				return
			}
			if n < 0 || n > len(data) {
				t.Fatalf("consumed %d of %d", n, len(data))
			}
			if n == 0 {
				if need := c.Need(data); need <= len(data) {
					t.Fatalf("Feed wants more but Need(%d bytes) = %d", len(data), need)
				}
				return
			}
			data = data[n:]
		}
	})
}
