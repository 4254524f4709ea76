package reactor

import (
	"strings"

	"golang.org/x/sys/unix"
)

// The receive window and the congestion control of loopback connections.
//
// The kernel fixes the largest window a connection advertises (its window
// clamp, TCP_WINDOW_CLAMP) from the receive buffer it has when it is
// established or when Config.LoopbackRecvBuffer is set on it, and keeps that
// clamp when SO_RCVBUF is raised later: a loopback connection whose buffer
// SetLoopbackRecvBuffer lengthened from 256 KiB to 2 MiB went on
// advertising 504 KiB (ss: rcv_ssthresh 516096, the sender's snd_wnd the
// same). A window held below the buffer's free room does not shrink as
// bytes queue, and Linux then acknowledges at once every second full
// segment that lands (__tcp_ack_snd_check: more than one segment
// unacknowledged and the window to advertise not smaller than the last):
// on loopback, inside the sender's write, which paid for about 620 pure
// ACKs per 64 MiB message where a raw TCP stream pays for about 70
// (docs/benchmarks.md, "64 MiB one way, ACKs, ninth session"). So
// SetLoopbackRecvBuffer sets the clamp to the buffer it set: the window
// then follows the buffer's free room, and a segment that lands beside
// queued bytes waits for the reader's next read to be acknowledged (one
// ACK per read, tcp_cleanup_rbuf).
//
// With fewer ACKs the sender's congestion window matters: BBR, the default
// here, models a loopback path (a round trip of about 1 µs) as needing some
// 16 segments in flight and stops sending beyond them until an ACK comes,
// so with one ACK per read the sender's unsent bytes pile up and its
// writes stall. A loopback path has no congestion to control; Reno, which
// every kernel allows, grows its window without bound there, and the
// receive window and ipc's message windows bound the bytes in flight
// instead. A loopback connection opens with it (Config.LoopbackCongestion);
// ipc switches a connection back to the kernel's default while small
// messages travel beside a large one (its short pipe), where the receiver's
// buffer stays short and its windows bound the bulk bytes in flight, so
// that path stays as it was (SetLoopbackCongestion).

// setWindowClamp makes fd's largest advertised window the receive buffer
// the kernel reports (twice the SO_RCVBUF set), lowered or raised.
func setWindowClamp(fd int) {
	if fd <= 0 {
		return
	}
	if n, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF); err == nil && n > 0 {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_WINDOW_CLAMP, n)
	}
}

// openCongestion gives a loopback connection Config.LoopbackCongestion as
// it opens, noting the kernel's default for SetLoopbackCongestion (loop).
func (c *Conn) openCongestion() {
	name := c.r.cfg.LoopbackCongestion
	if name == "" || c.fd <= 0 {
		return
	}
	cur, err := unix.GetsockoptString(c.fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION)
	if err != nil {
		return
	}
	c.ccDefault = strings.TrimRight(cur, "\x00")
	_ = unix.SetsockoptString(c.fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
}

// SetLoopbackCongestion switches c, if its peer is a loopback address and
// Config.LoopbackCongestion names an algorithm, to that congestion control
// (on, as it opened) or to the kernel's default (off) (loop-only). A name
// the kernel refuses leaves the connection as it is.
func (c *Conn) SetLoopbackCongestion(on bool) {
	if c.dead || !c.loopback || c.ccDefault == "" {
		return
	}
	name := c.ccDefault
	if on {
		name = c.r.cfg.LoopbackCongestion
	}
	_ = unix.SetsockoptString(c.fd, unix.IPPROTO_TCP, unix.TCP_CONGESTION, name)
}
