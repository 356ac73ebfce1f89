-- The MySQL/MariaDB schema: the source of truth (app/models.py mirrors it).
-- `flask --app wsgi init-db` runs these statements one by one on MySQL;
-- on SQLite it creates the same tables from the models.

CREATE TABLE IF NOT EXISTS users (
  id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  -- Binary collation: two different addresses are never one account (the app
  -- lower-cases emails itself; a Unicode collation would fold accents).
  email         VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
  name          VARCHAR(100) NOT NULL DEFAULT '',
  password_hash VARCHAR(255) NOT NULL,
  is_staff      TINYINT(1) NOT NULL DEFAULT 0,
  points        BIGINT NOT NULL DEFAULT 0,
  created_at    DATETIME NOT NULL,
  -- Logout, a password change and staff revocation add one: cookies of an
  -- earlier generation are no longer sessions (app/sessions.py).
  session_generation INT NOT NULL DEFAULT 0,
  UNIQUE KEY users_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS events (
  id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name          VARCHAR(200) NOT NULL,
  venue         VARCHAR(200) NOT NULL DEFAULT '',  -- shown to buyers and on tickets
  starts_at     DATETIME NULL,                     -- the performance (NULL: not announced)
  sale_opens_at DATETIME NULL,
  admission     VARCHAR(10) NOT NULL DEFAULT 'paused',  -- open | paused | closed
  max_active    INT NOT NULL,
  admit_rate    INT NOT NULL,
  active_ttl    INT NOT NULL,
  hold_ttl      INT NOT NULL,
  poll_budget   INT NOT NULL DEFAULT 5000,  -- polls/s the whole queue may send
  max_seats_per_person INT NOT NULL DEFAULT 4,  -- held, being paid for and bought
  prequeue_opens_at DATETIME NULL,          -- joining opens (NULL: at once)
  -- The fair start's secret (hex, 32 bytes): its SHA-256 is published from
  -- the start, the seed itself once the draw is made (drawn_at).
  draw_seed     CHAR(64) NOT NULL DEFAULT '',
  drawn_at      DATETIME NULL,
  -- Joins by accounts made after the cut-off need a solved proof of work (app/bots.py).
  bot_protection TINYINT(1) NOT NULL DEFAULT 0,
  -- Fans may cancel their bookings until then (NULL: fans cannot cancel;
  -- staff always can): app/cancellations.py.
  cancellable_until DATETIME NULL,
  created_at    DATETIME NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS seats (
  id            BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  event_id      BIGINT NOT NULL,
  section       VARCHAR(50) NOT NULL,
  row_label     VARCHAR(10) NOT NULL,
  number        INT NOT NULL,
  price         INT NOT NULL,
  status        VARCHAR(10) NOT NULL DEFAULT 'available',  -- available | booked | blocked
  holder_id     BIGINT NULL,
  version       INT NOT NULL DEFAULT 0,
  fencing_token BIGINT NOT NULL DEFAULT 0,
  UNIQUE KEY seats_event_place (event_id, section, row_label, number),
  KEY seats_event_status (event_id, status),
  CONSTRAINT seats_event FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE,
  CONSTRAINT seats_holder FOREIGN KEY (holder_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS bookings (
  id              BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id         BIGINT NOT NULL,
  event_id        BIGINT NOT NULL,
  amount          BIGINT NOT NULL,
  points_left     BIGINT NOT NULL,   -- the buyer's balance after paying (for replays)
  status          VARCHAR(10) NOT NULL DEFAULT 'confirmed',
  idempotency_key VARCHAR(100) NOT NULL,
  request_hash    VARCHAR(64) NOT NULL,
  created_at      DATETIME NOT NULL,
  UNIQUE KEY bookings_user_idempotency (user_id, idempotency_key),
  CONSTRAINT bookings_user FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT bookings_event FOREIGN KEY (event_id) REFERENCES events (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- `live` is 1 while the booking stands and NULL once cancelled: the unique
-- key makes two live bookings of one seat impossible, whatever else fails.
CREATE TABLE IF NOT EXISTS booking_seats (
  id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  booking_id BIGINT NOT NULL,
  seat_id    BIGINT NOT NULL,
  price      INT NOT NULL,
  live       SMALLINT NULL DEFAULT 1,
  UNIQUE KEY booking_seats_seat_live (seat_id, live),
  CONSTRAINT booking_seats_booking FOREIGN KEY (booking_id) REFERENCES bookings (id) ON DELETE CASCADE,
  CONSTRAINT booking_seats_seat FOREIGN KEY (seat_id) REFERENCES seats (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS payments (
  id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  booking_id BIGINT NOT NULL,
  user_id    BIGINT NOT NULL,
  amount     BIGINT NOT NULL,
  method     VARCHAR(20) NOT NULL DEFAULT 'points',
  created_at DATETIME NOT NULL,
  CONSTRAINT payments_booking FOREIGN KEY (booking_id) REFERENCES bookings (id) ON DELETE CASCADE,
  CONSTRAINT payments_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- A refund: one row per cancellation that gave points back (one or more
-- seats of one booking, `seat_ids` comma-separated in id order). The
-- payment row stays as it was; what a booking cost its buyer in the end is
-- its payments minus its refunds. `points_left`: the buyer's balance after
-- this refund (a repeated cancel answers with it).
CREATE TABLE IF NOT EXISTS refunds (
  id          BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  booking_id  BIGINT NOT NULL,
  user_id     BIGINT NOT NULL,
  amount      BIGINT NOT NULL,
  seat_ids    VARCHAR(255) NOT NULL,
  points_left BIGINT NOT NULL,
  actor_id    BIGINT NULL,  -- who cancelled: the buyer or a staff member
  created_at  DATETIME NOT NULL,
  KEY refunds_booking (booking_id),
  CONSTRAINT refunds_booking FOREIGN KEY (booking_id) REFERENCES bookings (id) ON DELETE CASCADE,
  CONSTRAINT refunds_user FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT refunds_actor FOREIGN KEY (actor_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Who took part in an event's draw (joined before the sale opened), under
-- a public pseudonymous id: GET /api/events/{id}/draw publishes the list.
-- A record of what was drawn: it stays as it was, whatever becomes of the
-- accounts (no foreign key to users).
CREATE TABLE IF NOT EXISTS draw_entries (
  event_id  BIGINT NOT NULL,
  user_id   BIGINT NOT NULL,
  public_id CHAR(16) NOT NULL,
  PRIMARY KEY (event_id, user_id),
  UNIQUE KEY draw_entries_public (event_id, public_id),
  CONSTRAINT draw_entries_event FOREIGN KEY (event_id) REFERENCES events (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

CREATE TABLE IF NOT EXISTS audit_log (
  id         BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  actor_id   BIGINT NULL,
  action     VARCHAR(50) NOT NULL,
  target     VARCHAR(100) NOT NULL,
  `before`   TEXT NULL,
  `after`    TEXT NULL,
  created_at DATETIME NOT NULL,
  KEY audit_log_created (created_at),
  CONSTRAINT audit_log_actor FOREIGN KEY (actor_id) REFERENCES users (id) ON DELETE SET NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;

-- Tickets let in at the door (app/tickets.py): a ticket is a booking_seats
-- row; the primary key lets each check in once, also from two doors at once.
CREATE TABLE IF NOT EXISTS checkins (
  ticket_id     BIGINT NOT NULL PRIMARY KEY,
  event_id      BIGINT NOT NULL,
  staff_id      BIGINT NULL,
  checked_in_at DATETIME NOT NULL,
  KEY checkins_event (event_id),
  CONSTRAINT checkins_ticket FOREIGN KEY (ticket_id) REFERENCES booking_seats (id) ON DELETE CASCADE
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
