// Package udpsock wraps the node's shared UDP socket (pion's ICE UDP mux reads and writes
// every peer's packets through it) so that its reads and writes bypass the Go runtime's
// system-call bookkeeping.
//
// Go's net package enters each read and write through the runtime's blocking system-call
// path. When every goroutine of the process was idle, that entry wakes the runtime's
// monitor thread (sysmon) and resets it to polling every 20 µs for as long as the process
// stays busy: on an SFU, which goes idle between the bursts each incoming packet starts,
// that polling alone was about a tenth of the server's CPU. The socket is non-blocking, so
// its system calls never wait; Conn issues them as raw system calls inside the socket's
// RawConn callbacks, and waits for readiness in the runtime's network poller as net does
// (deadlines included).
//
// On systems other than Linux, Conn uses the net package's methods.
package udpsock
