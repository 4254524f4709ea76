package reactor

import "golang.org/x/sys/unix"

// Reading a few new bytes while OnData is still decoding earlier ones.
//
// gnet reads a readable socket into its loop's buffer and presents those
// bytes to OnData. A handler that takes long over them (ipc copying a
// large message's bytes into its value) keeps a small message that arrives
// meanwhile waiting in the socket until OnData returns and gnet reads
// again. SideInput tells such a handler how many new bytes are waiting, and
// ReadSide reads them, without blocking, into the handler's own buffer: the
// handler then owns them as input that follows everything gnet presented
// (it must process them after that input, unless it knows the order does
// not matter), and gnet never sees them.

// SideInput reports how many bytes c's socket holds that gnet has not read
// (loop-only; one ioctl(2), SIOCINQ). It reports 0 where ReadSide would
// read nothing: on a TLS connection (its records need decrypting), while
// reads are paused, once the connection is closing or dead.
func (c *Conn) SideInput() int {
	if c.dead || c.tls != nil || c.readPaused || c.fd <= 0 || c.closeState.Load() != closeNone {
		return 0
	}
	n, err := unix.IoctlGetInt(c.fd, unix.SIOCINQ)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// ReadSide reads up to len(buf) of c's waiting input into buf, without
// blocking, and returns how many bytes it read (loop-only, from OnData).
// Those bytes follow all input presented to OnData so far, and are not
// presented to OnData. It reads nothing (0) where SideInput reports 0, and
// on any error or end of stream, which gnet's next read then finds.
func (c *Conn) ReadSide(buf []byte) int {
	if len(buf) == 0 || c.dead || c.tls != nil || c.readPaused || c.fd <= 0 || c.closeState.Load() != closeNone {
		return 0
	}
	for {
		n, err := unix.Read(c.fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n <= 0 {
			return 0
		}
		c.r.stats.sideReads.Add(1)
		c.r.stats.sideBytes.Add(uint64(n))
		return n
	}
}
