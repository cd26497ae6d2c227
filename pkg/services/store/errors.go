package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
)

// Error codes for database failures, used as a consumer's errorCode so a dead letter says which
// kind of database trouble it met.
const (
	CodeLockTimeout = "DB_LOCK_TIMEOUT" // waited too long for a row or database lock
	CodeTimeout     = "DB_TIMEOUT"      // the statement or its context timed out
	CodeConflict    = "DB_CONFLICT"     // deadlock or serialization failure
	CodeUnavailable = "DB_UNAVAILABLE"  // no connection to the database
	CodeError       = "DB_ERROR"        // anything else
)

// Code classifies a database error into one of the Code* constants. It returns "" for nil.
func Code(err error) string {
	if err == nil {
		return ""
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case "55P03":
			return CodeLockTimeout
		case "57014":
			return CodeTimeout
		case "40001", "40P01":
			return CodeConflict
		case "57P01", "57P02", "57P03", "08000", "08003", "08006", "08001", "08004":
			return CodeUnavailable
		}
		return CodeError
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		switch sqErr.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED
			return CodeLockTimeout
		case 9: // SQLITE_INTERRUPT: the context ended
			return CodeTimeout
		}
		return CodeError
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CodeTimeout
	}
	var connErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connErr) || errors.As(err, &netErr) || errors.Is(err, sql.ErrConnDone) || errors.Is(err, driver.ErrBadConn) {
		return CodeUnavailable
	}
	return CodeError
}

// IsUniqueViolation reports whether err is a unique or primary-key constraint violation.
func IsUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		// SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
		return sqErr.Code() == 2067 || sqErr.Code() == 1555
	}
	return false
}

// IsCheckViolation reports whether err is a CHECK constraint violation.
func IsCheckViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23514"
	}
	var sqErr *sqlite.Error
	if errors.As(err, &sqErr) {
		return sqErr.Code() == 275 // SQLITE_CONSTRAINT_CHECK
	}
	return false
}

// Transient reports whether err is a database failure that goes away by itself — a lock held
// too long, a timeout, a deadlock victim, a lost connection — so the same work succeeds when
// tried again later, as opposed to an error in the statement or the data.
func Transient(err error) bool {
	switch Code(err) {
	case CodeLockTimeout, CodeTimeout, CodeConflict, CodeUnavailable:
		return true
	}
	return false
}
