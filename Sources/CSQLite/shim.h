#ifndef ALLOT_CSQLITE_SHIM_H
#define ALLOT_CSQLITE_SHIM_H
#include <sqlite3.h>
/* SQLITE_TRANSIENT is a cast macro Swift cannot import. */
static inline void (*allot_sqlite_transient(void))(void *) { return SQLITE_TRANSIENT; }
/* sqlite3_config is variadic, which Swift cannot call. Memory statistics
   take a global mutex on every allocation; Allot reads none of them. Takes
   effect only before SQLite initialises (the first connection). */
static inline int allot_sqlite_disable_memory_statistics(void) { return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }
#endif
