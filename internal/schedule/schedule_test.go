package schedule

import (
	"testing"
	"time"
)

func TestDecideSchedule(t *testing.T) {
	utc := func(h, m, s int) time.Time { return time.Date(2026, 11, 21, h, m, s, 0, time.UTC) }
	for _, tc := range []struct {
		name      string
		schedule  string
		zone      string
		last, now time.Time
		deadline  time.Duration
		run       bool
		at        time.Time
		missed    int
		next      time.Time
	}{
		{"nothing due yet", "0 */6 * * *", "", utc(6, 0, 0), utc(7, 0, 0), 0, false, time.Time{}, 0, utc(12, 0, 0)},
		{"due now", "0 */6 * * *", "", utc(6, 0, 0), utc(12, 0, 5), 0, true, utc(12, 0, 0), 0, utc(18, 0, 0)},
		{"every minute, one due", "* * * * *", "", utc(6, 0, 0), utc(6, 1, 10), 0, true, utc(6, 1, 0), 0, utc(6, 2, 0)},
		{"after downtime: one catch-up, the rest skipped", "* * * * *", "", utc(6, 0, 0), utc(6, 10, 30), 0, true, utc(6, 10, 0), 9, utc(6, 11, 0)},
		{"after downtime beyond the deadline: nothing runs", "0 * * * *", "", utc(1, 0, 0), utc(6, 30, 0), 10 * time.Minute, false, utc(6, 0, 0), 5, utc(7, 0, 0)},
		{"within the deadline: it runs late", "0 * * * *", "", utc(1, 0, 0), utc(6, 5, 0), 10 * time.Minute, true, utc(6, 0, 0), 4, utc(7, 0, 0)},
		{"a time zone moves the due time", "0 2 * * *", "Europe/Paris", utc(0, 0, 0), utc(1, 0, 30), 0, true, utc(1, 0, 0), 0, time.Date(2026, 11, 22, 1, 0, 0, 0, time.UTC)},
		{"the same schedule in UTC is not due", "0 2 * * *", "", utc(0, 0, 0), utc(1, 0, 30), 0, false, time.Time{}, 0, utc(2, 0, 0)},
		{"descriptors", "@hourly", "", utc(6, 0, 0), utc(7, 0, 1), 0, true, utc(7, 0, 0), 0, utc(8, 0, 0)},
		{"@every", "@every 5m", "", utc(6, 0, 0), utc(6, 5, 1), 0, true, utc(6, 5, 0), 0, utc(6, 10, 1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sched, loc, err := Parse(tc.schedule, tc.zone)
			if err != nil {
				t.Fatal(err)
			}
			d := Decide(sched, loc, tc.last, tc.now, tc.deadline)
			if d.Run != tc.run || (!tc.at.IsZero() && !d.ScheduledAt.Equal(tc.at)) || d.Missed != tc.missed || !d.Next.Equal(tc.next) {
				t.Fatalf("Decide = run %v at %v, missed %d, next %v; want run %v at %v, missed %d, next %v",
					d.Run, d.ScheduledAt, d.Missed, d.Next, tc.run, tc.at, tc.missed, tc.next)
			}
		})
	}
	if _, _, err := Parse("* * * *", ""); err == nil {
		t.Error("a four-field schedule parsed")
	}
	if _, _, err := Parse("@daily", "Mars/Olympus"); err == nil {
		t.Error("an unknown time zone parsed")
	}
}
