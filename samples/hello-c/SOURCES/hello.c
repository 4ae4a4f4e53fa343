#include <stdio.h>

int main(void)
{
    puts("Hello from hello-c, built by Lenix.");
    return 0;
}
