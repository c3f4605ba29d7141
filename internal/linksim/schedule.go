package linksim

import (
	"context"
	"fmt"
	"time"
)

// Step is one change of a Schedule: from At after the schedule starts, the link is Up and
// Down.
type Step struct {
	At       time.Duration
	Up, Down Impairment
}

// Schedule changes a link over time, such as 3 Mbit/s falling to 500 kbit/s after 60 s and
// back after 120 s. Its steps are in order of At.
type Schedule []Step

// Validate reports whether the steps are in order and their impairments make sense.
func (s Schedule) Validate() error {
	for i, st := range s {
		if st.At < 0 || (i > 0 && st.At < s[i-1].At) {
			return fmt.Errorf("linksim: schedule step %d at %v: steps must be in order, from 0", i, st.At)
		}
		if err := st.Up.Validate(); err != nil {
			return fmt.Errorf("linksim: schedule step %d: up: %w", i, err)
		}
		if err := st.Down.Validate(); err != nil {
			return fmt.Errorf("linksim: schedule step %d: down: %w", i, err)
		}
	}
	return nil
}

// Play applies each step to the link at its time through set (Relay.SetImpairment or
// Conn.SetImpairment), counting from now. It returns after the last step, or with ctx's
// error when ctx ends first.
func (s Schedule) Play(ctx context.Context, set func(up, down Impairment) error) error {
	if err := s.Validate(); err != nil {
		return err
	}
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i, st := range s {
		timer.Reset(time.Until(start.Add(st.At)))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-timer.C:
		}
		if err := set(st.Up, st.Down); err != nil {
			return fmt.Errorf("linksim: schedule step %d: %w", i, err)
		}
	}
	return nil
}
