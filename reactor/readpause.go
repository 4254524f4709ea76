package reactor

import (
	"reflect"
	"unsafe"

	"github.com/panjf2000/gnet/v2"
	"golang.org/x/sys/unix"
)

// Pausing reads.
//
// gnet always reads a readable socket and offers no way to stop, so a peer
// that keeps sending while the application cannot keep up (a client that
// pipelines requests and never reads the responses, say) would make the
// handler buffer without bound. PauseRead takes EPOLLIN off the socket's
// registration in its gnet loop's epoll set; the kernel's receive buffer
// then fills and TCP back-pressure stops the peer. ResumeRead puts it back.
//
// The loop's epoll descriptor is not exported by gnet; it is found once,
// by reflection, in gnet's connection (conn.loop.poller.fd). If gnet's
// layout changes and it cannot be found, PauseRead reports false and reads
// go on. gnet re-registers EPOLLIN itself when it starts or finishes
// buffering output, so the pause is applied again after every Write and
// every OnData while it is on: at most one read (ReadBufferCap bytes) slips
// through each time.

// gnetPollFD returns the epoll descriptor of gc's gnet loop, or -1.
func gnetPollFD(gc gnet.Conn) (fd int) {
	defer func() {
		if recover() != nil {
			fd = -1
		}
	}()
	v := reflect.ValueOf(gc)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return -1
	}
	loop := field(v.Elem(), "loop")
	if !loop.IsValid() || loop.Kind() != reflect.Pointer || loop.IsNil() {
		return -1
	}
	poller := field(loop.Elem(), "poller")
	if !poller.IsValid() || poller.Kind() != reflect.Pointer || poller.IsNil() {
		return -1
	}
	pfd := field(poller.Elem(), "fd")
	if !pfd.IsValid() || pfd.Kind() != reflect.Int {
		return -1
	}
	return int(pfd.Int())
}

// field reads the unexported field name of struct value s.
func field(s reflect.Value, name string) reflect.Value {
	f := s.FieldByName(name)
	if !f.IsValid() || !f.CanAddr() {
		return reflect.Value{}
	}
	return reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem()
}

// PauseRead stops reading c's socket until ResumeRead (loop-only): no
// OnData follows, apart from at most one read that gnet may start before
// the pause is reapplied (see above). It reports whether reads are paused.
func (c *Conn) PauseRead() bool {
	if c.dead || c.gc == nil {
		return false
	}
	if c.pollFD == 0 {
		c.pollFD = gnetPollFD(c.gc)
	}
	if c.pollFD < 0 {
		return false
	}
	c.readPaused = true
	c.r.stats.readPauses.Add(1)
	c.applyReadPause()
	return true
}

// ResumeRead undoes PauseRead (loop-only).
func (c *Conn) ResumeRead() {
	if !c.readPaused {
		return
	}
	c.readPaused = false
	if c.dead || c.gc == nil {
		return
	}
	var ev uint32 = unix.EPOLLIN | unix.EPOLLPRI
	if c.gc.OutboundBuffered() > 0 {
		ev |= unix.EPOLLOUT
	}
	_ = unix.EpollCtl(c.pollFD, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)})
}

// ReadPaused reports whether PauseRead is in effect (loop-only).
func (c *Conn) ReadPaused() bool { return c.readPaused }

// applyReadPause registers c's socket for writability only (if gnet has
// output buffered) or for nothing but errors.
func (c *Conn) applyReadPause() {
	if !c.readPaused || c.dead || c.gc == nil {
		return
	}
	var ev uint32
	if c.gc.OutboundBuffered() > 0 {
		ev = unix.EPOLLOUT
	}
	_ = unix.EpollCtl(c.pollFD, unix.EPOLL_CTL_MOD, c.fd, &unix.EpollEvent{Events: ev, Fd: int32(c.fd)})
}
