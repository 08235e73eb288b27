// LZ4 block and frame APIs from Debian's liblz4-dev (pkg-config liblz4).
#include <lz4.h>
#include <lz4frame.h>
