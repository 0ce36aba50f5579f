import { BadRequestError } from './errors.js';

/*
 * Timestamps between the API (RFC 3339) and the database (timestamptz, microseconds), with
 * integer arithmetic only. JS Date is the bug this module exists to avoid: it keeps
 * milliseconds, and the drivers' Date parsers read years 0001-0099 as 1900-1999 or 2000-2099.
 * An instant is a day number (days since 1970-01-01, proleptic Gregorian) plus the
 * microsecond of that day: microseconds since the epoch would not fit a double exactly.
 */

const MICROS_PER_SECOND = 1_000_000;
const MICROS_PER_DAY = 86_400 * MICROS_PER_SECOND;

interface Instant {
  days: number;
  micros: number;
}

/** Days from 1970-01-01 to the given date (H. Hinnant's days_from_civil); any year, 0 and negatives too. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor((dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365);
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const mp = Math.floor((5 * dayOfYear + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day: dayOfYear - Math.floor((153 * mp + 2) / 5) + 1 };
}

function isLeapYear(year: number): boolean {
  return year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function daysInMonth(year: number, month: number): number {
  return month === 2 && isLeapYear(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
}

/** Six digits from a fraction of any length: digits past the microsecond are dropped, not rounded. */
function fractionMicros(digits: string | undefined): number {
  return digits ? Number(digits.slice(0, 6).padEnd(6, '0')) : 0;
}

/** A local date and time minus its offset, normalised so that 0 <= micros < one day. */
function instant(year: number, month: number, day: number, micros: number, offsetSeconds: number): Instant {
  let days = daysFromCivil(year, month, day);
  let total = micros - offsetSeconds * MICROS_PER_SECOND;
  const carry = Math.floor(total / MICROS_PER_DAY);
  days += carry;
  total -= carry * MICROS_PER_DAY;
  return { days, micros: total };
}

const pad = (n: number, width = 2) => String(n).padStart(width, '0');

/**
 * RFC 3339 in UTC with Z. The fraction has at least the three digits of Date.toISOString(),
 * which is what relay wrote before it kept microseconds: a client that compares the run_at it
 * sent from a Date with the one it gets keeps working (trimming every trailing zero, as Go's
 * RFC3339Nano does, would turn .120Z into .12Z). Past the third digit, trailing zeros go. A
 * year outside 0000-9999, which RFC 3339 cannot write, gets ISO 8601's expanded form.
 */
function format({ days, micros }: Instant): string {
  const { year, month, day } = civilFromDays(days);
  const y = year >= 0 && year <= 9999 ? pad(year, 4) : `${year < 0 ? '-' : '+'}${pad(Math.abs(year), 6)}`;
  const seconds = Math.floor(micros / MICROS_PER_SECOND);
  const fraction = micros - seconds * MICROS_PER_SECOND;
  const time = `${pad(Math.floor(seconds / 3600))}:${pad(Math.floor(seconds / 60) % 60)}:${pad(seconds % 60)}`;
  let digits = pad(fraction, 6);
  while (digits.length > 3 && digits.endsWith('0')) digits = digits.slice(0, -1);
  return `${y}-${pad(month)}-${pad(day)}T${time}.${digits}Z`;
}

/** The UTC range relay stores: RFC 3339's four-digit years, from 0001 (year 0000 is not AD). */
export const MIN_TIME = '0001-01-01T00:00:00Z';
export const MAX_TIME = '9999-12-31T23:59:59.999999Z';
const MIN_DAYS = daysFromCivil(1, 1, 1);
const MAX_DAYS = daysFromCivil(9999, 12, 31);

// RFC 3339 section 5.6: full-date "T" full-time, where T and Z may be lowercase (5.6, NOTE),
// time-secfrac is any number of digits and time-numoffset is +HH:MM or -HH:MM (the colon
// is required). Field ranges are checked after the match, to say which one is wrong.
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([Zz])|([+-])(\d{2}):(\d{2}))$/;

function invalid(field: string, path: string, message: string): BadRequestError {
  return new BadRequestError(`${field} ${message}`, [{ path, message }]);
}

/**
 * Reads an RFC 3339 date-time (any offset up to ±23:59, second 60 included as RFC 3339
 * allows) into the canonical UTC text relay sends to the database, truncated to the
 * microsecond: `2030-01-01T00:00:00+20:00` gives `2029-12-31T04:00:00.000Z`. Throws a
 * BadRequestError on `path` (e.g. /body/run_at) when the text is not RFC 3339, or when its
 * UTC value falls outside MIN_TIME..MAX_TIME.
 */
export function parseRfc3339(value: string, path: string): string {
  const field = path.split('/').pop() ?? 'value';
  const m = RFC3339.exec(value);
  if (!m) throw invalid(field, path, 'must be an RFC 3339 date-time with an offset, such as 2026-11-28T16:00:00Z or 2026-11-28T17:00:00+01:00');
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  if (month < 1 || month > 12) throw invalid(field, path, `has month ${pad(month)}; months run from 01 to 12`);
  if (day < 1 || day > daysInMonth(year, month)) throw invalid(field, path, `has day ${pad(day)}, which ${pad(year, 4)}-${pad(month)} does not have`);
  if (hour > 23 || minute > 59 || second > 60) throw invalid(field, path, `has a time of day out of range (${m[4]}:${m[5]}:${m[6]})`);
  let offsetSeconds = 0;
  if (m[9] !== undefined) {
    const offsetHours = Number(m[10]);
    const offsetMinutes = Number(m[11]);
    if (offsetHours > 23 || offsetMinutes > 59) throw invalid(field, path, `has an offset out of range (${m[9]}${m[10]}:${m[11]}); RFC 3339 allows up to ±23:59`);
    offsetSeconds = (m[9] === '-' ? -1 : 1) * (offsetHours * 3600 + offsetMinutes * 60);
  }
  // A leap second (:60) becomes the first instant of the next minute, as PostgreSQL reads it.
  const micros = ((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND + fractionMicros(m[7]);
  const utc = instant(year, month, day, micros, offsetSeconds);
  if (utc.days < MIN_DAYS || utc.days > MAX_DAYS) {
    throw invalid(field, path, `must fall between ${MIN_TIME} and ${MAX_TIME} in UTC (years 0001 to 9999); it is ${format(utc)}`);
  }
  return format(utc);
}

// timestamptz as PostgreSQL prints it with DateStyle ISO: `2026-01-01 00:00:00.123456+00`.
// Whatever the session's time zone, the offset is ±HH, ±HH:MM or ±HH:MM:SS (local mean time);
// years have four or more digits, and those before year 1 end in " BC".
const POSTGRES = /^(\d{4,})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:([+-])(\d{2})(?::(\d{2}))?(?::(\d{2}))?)?( BC)?$/;

/**
 * A timestamp as the database prints it (text), as RFC 3339 in UTC to the microsecond. Never
 * throws: a row is read after its claim has committed, so a value this does not recognise
 * ('infinity', stored behind relay's back) is returned as the database wrote it.
 */
export function formatTimestamp(text: string): string {
  const m = POSTGRES.exec(text);
  if (!m) return text;
  const [rawYear, month, day, hour, minute, second] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
  // 1 BC is year 0 of the proleptic Gregorian calendar (ISO 8601), 2 BC is -1.
  const year = m[12] ? 1 - rawYear : rawYear;
  const sign = m[8] === '-' ? -1 : 1;
  const offsetSeconds = sign * (Number(m[9] ?? 0) * 3600 + Number(m[10] ?? 0) * 60 + Number(m[11] ?? 0));
  const micros = ((hour * 60 + minute) * 60 + second) * MICROS_PER_SECOND + fractionMicros(m[7]);
  return format(instant(year, month, day, micros, offsetSeconds));
}
