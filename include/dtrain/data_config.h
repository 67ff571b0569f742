/* data_config.h: the data.* keys' rules that involve several keys.
 *
 * Called by the configuration builder (config.c), so every command sees
 * them: `dtrain config --check` reports them too.
 */
#ifndef DTRAIN_DATA_CONFIG_H
#define DTRAIN_DATA_CONFIG_H

#include "dtrain/config.h"

struct cJSON;

/* Fills an empty data.output (the default) in the typed config and the
 * merged tree: data/prepared/<input name>.h5 for an input file (its name
 * without directories, compression suffix and extension:
 * data/ratings.csv.gz -> data/prepared/ratings.h5), and
 * data/prepared/synthetic.h5 for the synthetic generator. */
void dt_data_config_resolve(dt_config *cfg, struct cJSON *tree);

/* Fails with DT_EXIT_USAGE, naming the keys, when they contradict each
 * other: an input file (data.reviews, data.meta, data.items) with
 * data.format = synthetic (which would silently train on the synthetic
 * set), data.meta with delimited input (item files are data.items),
 * data.items with Amazon input (metadata is data.meta), or a data.delimiter
 * that is not one character or a known name. */
int dt_data_config_check(const dt_config *cfg);

#endif
