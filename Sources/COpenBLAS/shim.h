// CBLAS from Debian's libopenblas-dev (pkg-config openblas, in .../openblas-pthread/pkgconfig).
#include <cblas.h>
