// oneDNN (Debian libdnnl-dev 2.6) C API: bf16 matrix products for frozen weights (model.precision: bf16).
#include <dnnl.h>
