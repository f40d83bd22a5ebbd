package faultproxy

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

func roundTrip(t *testing.T, c net.Conn, r *bufio.Reader) (string, error) {
	t.Helper()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return "", err
	}
	return r.ReadString('\n')
}

func TestProxyForwardsDelaysStallsAndCuts(t *testing.T) {
	p, err := Start(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if got, err := roundTrip(t, c, r); err != nil || got != "ping\n" {
		t.Fatalf("got %q, %v; want the echo", got, err)
	}

	// A delay applies to each chunk in both directions: a round trip takes
	// at least two of them.
	p.SetDelay(50 * time.Millisecond)
	start := time.Now()
	if _, err := roundTrip(t, c, r); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Errorf("round trip with a 50ms delay per chunk took %v, want at least 100ms", d)
	}
	p.SetDelay(0)

	// A stall holds the answer until Resume.
	p.Stall()
	_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
	if _, err := roundTrip(t, c, r); err == nil {
		t.Fatal("got an answer through a stalled proxy")
	}
	_ = c.SetReadDeadline(time.Time{})
	p.Resume()
	if got, err := r.ReadString('\n'); err != nil || got != "ping\n" {
		t.Fatalf("after Resume got %q, %v; want the held echo", got, err)
	}

	// Cut closes the connection; a new one works.
	p.Cut()
	_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := roundTrip(t, c, r); err == nil {
		t.Error("got an answer on a cut connection")
	}
	c2, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got, err := roundTrip(t, c2, bufio.NewReader(c2)); err != nil || got != "ping\n" {
		t.Fatalf("new connection after Cut: got %q, %v", got, err)
	}
	if p.Chunks() == 0 {
		t.Error("Chunks() = 0 after traffic")
	}
}
