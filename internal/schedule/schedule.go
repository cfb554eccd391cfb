// Package schedule reads cron schedules in a time zone and decides, with
// CronJob's rules, when a scheduled run is due. EtcdBackup and EtcdCluster's
// defragmentation share it.
package schedule

import (
	"fmt"
	"time"

	"github.com/robfig/cron/v3"
)

// Decision is what the clock says a scheduled job (a backup, a
// defragmentation) should do now.
type Decision struct {
	// Run is true when a run is due now; ScheduledAt is the time it was due.
	Run         bool
	ScheduledAt time.Time
	// Missed counts the runs that were due since the last one and are
	// skipped: after downtime at most one catch-up run is taken.
	Missed int
	// Next is when the next run is due.
	Next time.Time
}

// Parse reads a cron schedule (five fields or a descriptor) in a
// time zone (empty means UTC).
func Parse(schedule, timeZone string) (cron.Schedule, *time.Location, error) {
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

// Decide is CronJob's rule: the most recent due time after the
// last run (or creation) that is not later than now is run if it is within
// the starting deadline; older due times are skipped, never replayed.
// deadline 0 means the run may start any time before the next one is due.
func Decide(sched cron.Schedule, loc *time.Location, last, now time.Time, deadline time.Duration) Decision {
	var d Decision
	var latest time.Time
	// Bounded: a schedule every minute over a year of downtime is 525600
	// steps; past that the oldest are not counted.
	for t, i := sched.Next(last.In(loc)), 0; !t.After(now) && i < 600000; t, i = sched.Next(t), i+1 {
		if !latest.IsZero() {
			d.Missed++
		}
		latest = t
	}
	d.Next = sched.Next(now.In(loc))
	if latest.IsZero() {
		return d
	}
	if deadline == 0 {
		deadline = d.Next.Sub(latest)
	}
	if now.Sub(latest) <= deadline {
		d.Run, d.ScheduledAt = true, latest
	} else {
		// Too late even for the latest: it is missed as well.
		d.Missed++
		d.ScheduledAt = latest
	}
	return d
}
