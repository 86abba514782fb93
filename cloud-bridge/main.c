#include <stdio.h>
int main(void)
{
    puts("ferry-cloud: not built yet");
    return 1;
}
