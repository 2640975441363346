// Times typed in the archive's display time zone (not the browser's), as the instants the API
// filters by. A candidate for app.js: any page with a time-range filter needs it.

function offsetAt(ms, tz) {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat("en-US", {
      timeZone: tz, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]),
  );
  const wall = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  return wall - Math.floor(ms / 1000) * 1000;
}

// "2026-12-02T10:30" in `tz` → "2026-12-02T02:30:00.000Z"; "" → ""
export function zonedToIso(local, tz) {
  const match = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})/.exec(local || "");
  if (!match) return "";
  const [, y, m, d, hh, mm] = match.map(Number);
  const wall = Date.UTC(y, m - 1, d, hh, mm);
  // twice: the first guess may sit across a daylight-saving change from the answer
  let instant = wall - offsetAt(wall, tz);
  instant = wall - offsetAt(instant, tz);
  return new Date(instant).toISOString();
}
