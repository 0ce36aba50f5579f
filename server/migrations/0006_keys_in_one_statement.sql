-- A keyed single enqueue or complete stores its Idempotency-Key with its answer in the same
-- statement as its effect (no transaction of several statements). When a key of the statement
-- turns out to be taken already (a resend, or another server's request meanwhile), the
-- statement must leave nothing behind: this function, called with the taken keys, raises, and
-- so rolls the whole statement back. SQLSTATE RLK01 names the case to the server, and the
-- detail lists the taken keys as a JSON array of [scope, key] pairs.
CREATE FUNCTION relay_keys_taken(taken jsonb) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  IF taken IS NOT NULL AND jsonb_array_length(taken) > 0 THEN
    RAISE EXCEPTION 'an Idempotency-Key of this statement was taken already'
      USING ERRCODE = 'RLK01', DETAIL = taken::text;
  END IF;
  RETURN false;
END
$$;
