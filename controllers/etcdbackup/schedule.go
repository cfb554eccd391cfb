package etcdbackup

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// scheduleDecision is what the clock says a backup should do now.
type scheduleDecision struct {
	// run is true when a run is due now; scheduledAt is the time it was due.
	run         bool
	scheduledAt time.Time
	// missed counts the runs that were due since the last one and are
	// skipped: after downtime at most one catch-up run is taken.
	missed int
	// next is when the next run is due.
	next time.Time
}

// parseSchedule reads a cron schedule (five fields or a descriptor) in a
// time zone (empty means UTC).
func parseSchedule(schedule, timeZone string) (cron.Schedule, *time.Location, error) {
	loc := time.UTC
	if timeZone != "" {
		l, err := time.LoadLocation(timeZone)
		if err != nil {
			return nil, nil, fmt.Errorf("unknown time zone %q: %w", timeZone, err)
		}
		loc = l
	}
	sched, err := cron.ParseStandard(schedule)
	if err != nil {
		return nil, nil, fmt.Errorf("schedule %q: %w", schedule, err)
	}
	return sched, loc, nil
}

// decideSchedule is CronJob's rule: the most recent due time after the
// last run (or creation) that is not later than now is run if it is within
// the starting deadline; older due times are skipped, never replayed.
// deadline 0 means the run may start any time before the next one is due.
func decideSchedule(sched cron.Schedule, loc *time.Location, last, now time.Time, deadline time.Duration) scheduleDecision {
	var d scheduleDecision
	var latest time.Time
	// Bounded: a schedule every minute over a year of downtime is 525600
	// steps; past that the oldest are not counted.
	for t, i := sched.Next(last.In(loc)), 0; !t.After(now) && i < 600000; t, i = sched.Next(t), i+1 {
		if !latest.IsZero() {
			d.missed++
		}
		latest = t
	}
	d.next = sched.Next(now.In(loc))
	if latest.IsZero() {
		return d
	}
	if deadline == 0 {
		deadline = d.next.Sub(latest)
	}
	if now.Sub(latest) <= deadline {
		d.run, d.scheduledAt = true, latest
	} else {
		// Too late even for the latest: it is missed as well.
		d.missed++
		d.scheduledAt = latest
	}
	return d
}
