#include <cblas.h>
// Debian's cblas.h declares these; repeated so the module works with other builds too.
void openblas_set_num_threads(int num_threads);
int openblas_get_num_threads(void);
