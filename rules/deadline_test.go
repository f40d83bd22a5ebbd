package rules

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A deadline cancels the evaluation under way once its time is up, with
// context.DeadlineExceeded as the cause, and the next evaluation gets a
// live context again.
func TestDeadlineFiresAndIsRenewed(t *testing.T) {
	d := deadlines.New().(*deadline)
	ctx := d.start(time.Millisecond)
	<-ctx.Done() // the timer fires
	if cause := context.Cause(ctx); !errors.Is(cause, context.DeadlineExceeded) {
		t.Fatalf("cause %v, want context.DeadlineExceeded", cause)
	}
	d.stop()
	next := d.start(time.Hour)
	if next.Err() != nil || next == ctx {
		t.Fatalf("after a timeout the next evaluation got a done context (%v) or the old one", next.Err())
	}
	d.stop()
}

// A firing that comes after its evaluation ended, or before the deadline
// of the evaluation now under way (a timer reset late), cancels nothing.
func TestDeadlineLateFiringCancelsNothing(t *testing.T) {
	d := deadlines.New().(*deadline)
	ctx := d.start(time.Hour)
	d.stop()
	d.fire() // the ended evaluation's timer, late
	if ctx.Err() != nil {
		t.Fatalf("a firing after the evaluation ended cancelled its context: %v", context.Cause(ctx))
	}
	ctx = d.start(time.Hour)
	d.fire() // a firing meant for an earlier evaluation
	if ctx.Err() != nil {
		t.Fatalf("a firing before the deadline cancelled the evaluation: %v", context.Cause(ctx))
	}
	d.stop()
}
