package reactor

// fdOnLoop returns the connection's file descriptor (loop-only, open conns).
func (c *Conn) fdOnLoop() int { return c.gc.Fd() }
