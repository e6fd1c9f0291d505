# numbers each line of standard input (BufferedReader.readLine until null)
.class public LLines;
.super Ljava/lang/Object;

.method public static main([Ljava/lang/String;)V
    .registers 7
    new-instance v0, Ljava/io/BufferedReader;
    new-instance v1, Ljava/io/InputStreamReader;
    sget-object v2, Ljava/lang/System;->in:Ljava/io/InputStream;
    invoke-direct {v1, v2}, Ljava/io/InputStreamReader;-><init>(Ljava/io/InputStream;)V
    invoke-direct {v0, v1}, Ljava/io/BufferedReader;-><init>(Ljava/io/Reader;)V
    sget-object v3, Ljava/lang/System;->out:Ljava/io/PrintStream;
    const/4 v4, 1
    :loop
    invoke-virtual {v0}, Ljava/io/BufferedReader;->readLine()Ljava/lang/String;
    move-result-object v1
    if-eqz v1, :done
    invoke-virtual {v3, v4}, Ljava/io/PrintStream;->print(I)V
    const-string v5, ": "
    invoke-virtual {v3, v5}, Ljava/io/PrintStream;->print(Ljava/lang/String;)V
    invoke-virtual {v3, v1}, Ljava/io/PrintStream;->println(Ljava/lang/String;)V
    add-int/lit8 v4, v4, 1
    goto :loop
    :done
    return-void
.end method
