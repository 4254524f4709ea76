package reactor

// Handler receives a reactor's connection events. Every method runs on the
// connection's event loop and must not block (no blocking Send, Dial or
// channel operations that can wait).
//
// Per connection the calls are: OnOpen once, then any number of OnData,
// OnWritable and OnWake (and Execute functions and loop timers in between),
// then OnClose once, last.
type Handler interface {
	// OnOpen runs once, when the connection is registered on its loop. For a
	// dialed connection it runs before Dial returns.
	OnOpen(c *Conn)
	// OnData runs with the bytes received and not yet consumed; data is valid
	// only during the call. It returns how many leading bytes it consumed; the
	// rest is presented again, followed by newer bytes, on the next call.
	// OnData runs only when new bytes have arrived (never with zero new
	// bytes), so unconsumed bytes wait for more input. If more than
	// MaxInbound bytes stay unconsumed, the connection closes with
	// ErrInboundOverflow.
	OnData(c *Conn, data []byte) (consumed int)
	// OnWritable runs when a connection whose Writable returned false has
	// drained to LowWater.
	OnWritable(c *Conn)
	// OnWake runs after one or more Wake calls (coalesced).
	OnWake(c *Conn)
	// OnClose runs once, last; the connection must not be used afterwards.
	// err is the error given to the first Close or Abort (ErrClosed if that
	// was nil), ErrInboundOverflow, ErrStopped when Reactor.Stop closed it,
	// or gnet's error (an I/O error, or one wrapping io.EOF when the peer
	// closed).
	OnClose(c *Conn, err error)
}
