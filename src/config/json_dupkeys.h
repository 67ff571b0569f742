/* json_dupkeys.h (internal to src/config): finds a key given twice in one
 * JSON object, with the lines of both.
 *
 * cJSON keeps both members of `{"lr": 1, "lr": 2}` in the object's list, and
 * every lookup returns the first: one of the user's settings would be lost
 * without a word. The scan runs over text that cJSON has already accepted.
 */
#ifndef DTRAIN_CONFIG_JSON_DUPKEYS_H
#define DTRAIN_CONFIG_JSON_DUPKEYS_H

#include <stddef.h>

/* Returns 1 when some object of `text` holds a key twice: `path` gets the
 * key as dotted path from the top ("train.lr"; an object inside an array
 * takes its array's path), *first_line and *second_line the 1-based lines
 * of the two occurrences. Returns 0 otherwise. Keys compare after decoding
 * JSON escapes. */
int dt_json_find_duplicate_key(const char *text, char *path, size_t path_size, int *first_line, int *second_line);

#endif
