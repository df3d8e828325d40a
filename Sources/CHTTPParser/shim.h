#ifndef ALLOT_CHTTPPARSER_SHIM_H
#define ALLOT_CHTTPPARSER_SHIM_H
/* Node.js's HTTP/1.x parser (Debian's libhttp-parser-dev). */
#include <http_parser.h>
#endif
