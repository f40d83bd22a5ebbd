package kafkatest

import "testing"

func TestTransportIsPerTest(t *testing.T) {
	a := Transport(t)
	if Transport(t) != a {
		t.Fatal("a second call made another transport")
	}
	var b any
	t.Run("sub", func(t *testing.T) { b = Transport(t) })
	if b == a {
		t.Fatal("a subtest shares its parent's transport")
	}
	if _, ok := transports.Load(t); !ok {
		t.Fatal("the parent's transport was forgotten before it ended")
	}
}
