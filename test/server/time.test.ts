import { expect } from 'chai';
import { BadRequestError } from '../../server/src/errors.js';
import { formatTimestamp, parseRfc3339 } from '../../server/src/time.js';

/** The BadRequestError parseRfc3339 throws for value, on /body/run_at. */
function refusal(value: string): BadRequestError {
  try {
    parseRfc3339(value, '/body/run_at');
  } catch (err) {
    expect(err).to.be.instanceOf(BadRequestError);
    return err as BadRequestError;
  }
  throw new Error(`${value} was accepted`);
}

describe('time: RFC 3339 in, the database text out', () => {
  describe('parseRfc3339', () => {
    const accepted: Array<[string, string]> = [
      ['2030-01-01T00:00:00+20:00', '2029-12-31T04:00:00.000Z'],
      ['2030-01-01T00:00:00-23:59', '2030-01-01T23:59:00.000Z'],
      ['2030-01-01T00:00:00-00:00', '2030-01-01T00:00:00.000Z'],
      ['2030-01-01t00:00:00z', '2030-01-01T00:00:00.000Z'],
      ['2030-01-01T00:00:00.1Z', '2030-01-01T00:00:00.100Z'],
      ['2030-01-01T00:00:00.123456789Z', '2030-01-01T00:00:00.123456Z'],
      ['2030-01-01T00:00:00.999999999Z', '2030-01-01T00:00:00.999999Z'],
      ['2030-01-01T00:00:00.1234500Z', '2030-01-01T00:00:00.12345Z'],
      // Leap years: divisible by 4, except centuries not divisible by 400.
      ['2024-02-29T12:00:00Z', '2024-02-29T12:00:00.000Z'],
      ['2000-02-29T12:00:00Z', '2000-02-29T12:00:00.000Z'],
      ['0004-02-29T12:00:00Z', '0004-02-29T12:00:00.000Z'],
      ['2024-02-28T23:30:00-01:00', '2024-02-29T00:30:00.000Z'],
      ['2023-02-28T23:30:00-01:00', '2023-03-01T00:30:00.000Z'],
      ['2030-12-31T23:00:00-01:00', '2031-01-01T00:00:00.000Z'],
      // A leap second is the first instant of the next minute, as PostgreSQL reads it.
      ['2016-12-31T23:59:60Z', '2017-01-01T00:00:00.000Z'],
      ['1969-12-31T23:59:59.999999Z', '1969-12-31T23:59:59.999999Z'],
      ['0001-01-01T00:00:00Z', '0001-01-01T00:00:00.000Z'],
      ['0001-01-01T00:59:00+00:59', '0001-01-01T00:00:00.000Z'],
      ['9999-12-31T23:59:59.999999Z', '9999-12-31T23:59:59.999999Z'],
      ['9999-12-31T00:00:00-23:59', '9999-12-31T23:59:00.000Z'],
      ['0050-06-01T12:00:00.123456Z', '0050-06-01T12:00:00.123456Z'],
    ];
    for (const [value, utc] of accepted) {
      it(`reads ${value} as ${utc}`, () => expect(parseRfc3339(value, '/body/run_at')).to.equal(utc));
    }

    const outside: Array<[string, string]> = [
      ['0001-01-01T00:00:00+01:00', '0000-12-31T23:00:00.000Z'],
      ['0000-12-31T23:59:59.999999Z', '0000-12-31T23:59:59.999999Z'],
      ['9999-12-31T23:59:59-23:59', '+010000-01-01T23:58:59.000Z'],
      ['9999-12-31T23:59:60Z', '+010000-01-01T00:00:00.000Z'],
    ];
    for (const [value, utc] of outside) {
      it(`refuses ${value}, ${utc} in UTC, naming the range and the path`, () => {
        const err = refusal(value);
        expect(err.status).to.equal(400);
        expect(err.message).to.match(/^run_at must fall between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59\.999999Z/);
        expect(err.errors).to.have.length(1);
        expect(err.errors[0]!.path).to.equal('/body/run_at');
        expect(err.errors[0]!.message).to.include(utc);
      });
    }

    const malformed: Array<[string, RegExp]> = [
      ['2023-02-29T00:00:00Z', /day 29/],
      ['1900-02-29T00:00:00Z', /day 29/],
      ['2030-04-31T00:00:00Z', /day 31/],
      ['2030-00-10T00:00:00Z', /month 00/],
      ['2030-13-10T00:00:00Z', /month 13/],
      ['2030-01-01T24:00:00Z', /time of day/],
      ['2030-01-01T23:60:00Z', /time of day/],
      ['2030-01-01T00:00:00+24:00', /offset/],
      ['2030-01-01T00:00:00+23:60', /offset/],
      // Not RFC 3339, though ISO 8601 or the format check let them through.
      ['2030-01-01T00:00:00+0100', /RFC 3339/],
      ['2030-01-01T00:00:00+01', /RFC 3339/],
      ['2030-01-01 00:00:00Z', /RFC 3339/],
      ['2030-01-01T00:00:00', /RFC 3339/],
      ['2030-01-01T00:00:00.Z', /RFC 3339/],
      ['+012030-01-01T00:00:00Z', /RFC 3339/],
    ];
    for (const [value, reason] of malformed) {
      it(`refuses ${value} as no RFC 3339 date-time`, () => {
        const err = refusal(value);
        expect(err.errors[0]).to.include({ path: '/body/run_at' });
        expect(err.errors[0]!.message).to.match(reason);
      });
    }

    it('names the path it is given (a batch element)', () => {
      try {
        parseRfc3339('0000-01-01T00:00:00Z', '/body/3/run_at');
        expect.fail('accepted');
      } catch (err) {
        expect((err as BadRequestError).errors[0]!.path).to.equal('/body/3/run_at');
      }
    });
  });

  describe('formatTimestamp', () => {
    const cases: Array<[string, string]> = [
      ['2026-01-01 00:00:00+00', '2026-01-01T00:00:00.000Z'],
      ['2026-01-01 00:00:00.12+00', '2026-01-01T00:00:00.120Z'],
      ['2026-01-01 00:00:00.1234+00', '2026-01-01T00:00:00.1234Z'],
      ['2026-01-01 00:00:00.123456+00', '2026-01-01T00:00:00.123456Z'],
      ['0050-06-01 12:00:00.123456+00', '0050-06-01T12:00:00.123456Z'],
      ['0001-01-01 00:00:00.000001+00', '0001-01-01T00:00:00.000001Z'],
      ['9999-12-31 23:59:59.999999+00', '9999-12-31T23:59:59.999999Z'],
      // Any session time zone: whole hours, minutes, and local mean time to the second.
      ['2030-06-01 14:00:00+02', '2030-06-01T12:00:00.000Z'],
      ['2000-01-01 05:30:00+05:30', '2000-01-01T00:00:00.000Z'],
      ['1999-12-31 20:00:00-04', '2000-01-01T00:00:00.000Z'],
      ['0050-06-01 12:09:21.123456+00:09:21', '0050-06-01T12:00:00.123456Z'],
      ['2024-03-01 00:30:00+01', '2024-02-29T23:30:00.000Z'],
      // Before year 1 (only ever stored behind relay's back): 1 BC is year 0000, 2 BC is -1.
      ['0001-12-31 23:00:00+00 BC', '0000-12-31T23:00:00.000Z'],
      ['0001-01-01 00:30:00+01 BC', '-000001-12-31T23:30:00.000Z'],
      ['4713-01-01 00:00:00+00 BC', '-004712-01-01T00:00:00.000Z'],
      ['10000-01-01 00:00:00+00', '+010000-01-01T00:00:00.000Z'],
      ['294276-12-31 23:59:59.999999+00', '+294276-12-31T23:59:59.999999Z'],
    ];
    for (const [text, rfc3339] of cases) {
      it(`writes ${text} as ${rfc3339}`, () => expect(formatTimestamp(text)).to.equal(rfc3339));
    }

    it('returns what it cannot read as it is, never throwing', () => {
      expect(formatTimestamp('infinity')).to.equal('infinity');
      expect(formatTimestamp('-infinity')).to.equal('-infinity');
    });

    it('reads every canonical value parseRfc3339 sends back to itself', () => {
      for (const value of ['0001-01-01T00:00:00.000001Z', '2024-02-29T23:59:59.999999Z', '9999-12-31T23:59:59.999999Z']) {
        const canonical = parseRfc3339(value, '/body/run_at');
        expect(formatTimestamp(canonical.replace('T', ' ').replace('Z', '+00'))).to.equal(canonical);
      }
    });
  });
});
