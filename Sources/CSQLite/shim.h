// The system SQLite C API for the Domains store (apt: libsqlite3-dev).
// A shim header so the module map does not hard-code /usr/include.
#include <sqlite3.h>

// SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift
// cannot import; expose it as a typed constant.
static inline sqlite3_destructor_type csqlite_transient(void) { return SQLITE_TRANSIENT; }
