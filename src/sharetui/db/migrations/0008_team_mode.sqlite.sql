ALTER TABLE "users" ADD COLUMN "login" VARCHAR(63);
CREATE UNIQUE INDEX "users_login" ON "users" ("login");
CREATE TABLE "team_config" ("key" VARCHAR(64) NOT NULL PRIMARY KEY, "value" TEXT NOT NULL);
